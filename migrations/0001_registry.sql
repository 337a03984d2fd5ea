-- The platform registry (DESIGN §5): what the Registry Bootstrap discovered, so the platform can
-- find its own resources without ARM access. Owned by vibedata-bootstrap's embedded migrations;
-- the release's own schema lives elsewhere and is migrated separately.
--
-- Configuration references hold where a value lives (a Key Vault secret URI), never the value.
CREATE SCHEMA registry;

COMMENT ON SCHEMA registry IS 'Platform registry and health, owned by vibedata-bootstrap (embedded migrations).';

-- One row per Azure resource of the deployment. Rows that are no longer discovered are kept with
-- removed_at set, so history and health results that point at them stay readable.
CREATE TABLE registry.resources (
    resource_key       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    arm_id             text        NOT NULL CHECK (arm_id ~* '^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/.+'),
    name               text        NOT NULL,
    type               text        NOT NULL CHECK (type ~ '^[A-Za-z0-9.]+/[A-Za-z0-9./]+$'),
    kind               text,
    -- What the platform uses the resource for (e.g. 'key-vault', 'postgres', 'container-registry').
    role               text,
    location           text,
    sku                text,
    provisioning_state text,
    tags               jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(tags) = 'object'),
    -- A small, chosen subset of ARM properties; bulky documents belong in Blob.
    properties         jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(properties) = 'object'),
    discovered_at      timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    removed_at         timestamptz
);

-- ARM ids are case-insensitive: one row per resource whatever casing ARM returned.
CREATE UNIQUE INDEX resources_arm_id_key ON registry.resources (lower(arm_id));
CREATE INDEX resources_type_idx ON registry.resources (lower(type)) WHERE removed_at IS NULL;
CREATE INDEX resources_role_idx ON registry.resources (role) WHERE removed_at IS NULL;

-- How a resource is reached from inside the platform's network: the private FQDN its private
-- endpoint resolves to, that private IP, and the port.
CREATE TABLE registry.endpoints (
    endpoint_key        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource_key        bigint      NOT NULL REFERENCES registry.resources (resource_key) ON DELETE CASCADE,
    -- The private link sub-resource (groupId), e.g. 'blob', 'vault', 'registry', 'postgresqlServer'.
    group_id            text        NOT NULL,
    fqdn                text        NOT NULL CHECK (fqdn ~ '^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$'),
    private_ip          inet,
    port                integer     NOT NULL CHECK (port BETWEEN 1 AND 65535),
    protocol            text        NOT NULL DEFAULT 'https',
    -- ARM id of the private endpoint that provides this address, when there is one.
    private_endpoint_id text,
    discovered_at       timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (resource_key, group_id, fqdn, port)
);

CREATE INDEX endpoints_fqdn_idx ON registry.endpoints (lower(fqdn));

-- Where a configuration value lives. Never the value itself: a Key Vault secret URI, an App
-- Configuration key, an environment variable name.
CREATE TABLE registry.configuration_references (
    reference_key bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text        NOT NULL UNIQUE,
    kind          text        NOT NULL CHECK (kind IN ('keyVaultSecret', 'keyVaultKey', 'keyVaultCertificate', 'appConfiguration', 'environment')),
    uri           text        NOT NULL,
    -- The resource holding the value (the Key Vault), when it is in the registry.
    resource_key  bigint      REFERENCES registry.resources (resource_key) ON DELETE SET NULL,
    description   text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- Key Vault references are URIs into a vault; anything else in that column is a mistake
    -- (and possibly a value pasted where its location belongs).
    CHECK (kind NOT LIKE 'keyVault%' OR uri ~ '^https://[^/]+/(secrets|keys|certificates)/[A-Za-z0-9-]+(/[0-9a-fA-F]{32})?$')
);

-- The change history of registry snapshots: one row per Registry Bootstrap run that changed
-- something (or per run, at the phase's choice), with a digest of the canonical snapshot so an
-- unchanged platform is recognised without diffing.
CREATE TABLE registry.snapshots (
    snapshot_key   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    deployment_id  text        NOT NULL,
    release        text,
    digest         text        NOT NULL CHECK (digest ~ '^sha256:[0-9a-f]{64}$'),
    resources      integer     NOT NULL CHECK (resources >= 0),
    endpoints      integer     NOT NULL CHECK (endpoints >= 0),
    changes        integer     NOT NULL CHECK (changes >= 0),
    -- What changed since the previous snapshot: {"added": [...], "removed": [...], "updated": [...]}.
    diff           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    binary_version text        NOT NULL
);

CREATE INDEX snapshots_taken_at_idx ON registry.snapshots (deployment_id, taken_at DESC);
