-- What the release deployed inside the platform's resources, which ARM cannot list: the Helm
-- releases on AKS (Airbyte), the AI Search indexes, and the Foundry project's index assets and
-- agents. Registry Bootstrap reads them from the services themselves (a read-only runCommand,
-- the data planes) and records what it found; Health Bootstrap checks each recorded object.
--
-- `host` is the ARM id of the resource that holds the object (the cluster, the Search service,
-- the Foundry project). `version` is the Helm revision, the index's ETag, the asset's or the
-- agent's version; `digest` what the release pinned (the chart digest, the agent's
-- `vibedata.digest`); `state` what the service says (`deployed`, `active`, ...). No value of a
-- secret is ever stored here.
CREATE TABLE registry.release_objects (
    kind        text        NOT NULL CHECK (kind IN ('helmRelease', 'searchIndex', 'indexAsset', 'agent')),
    host        text        NOT NULL,
    name        text        NOT NULL,
    version     text,
    digest      text,
    state       text,
    properties  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX release_objects_key ON registry.release_objects (kind, lower(host), name);
