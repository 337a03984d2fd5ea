-- Release schema for the VibeData application, owned by the release migrations.
CREATE SCHEMA IF NOT EXISTS vibedata_app;

CREATE TABLE vibedata_app.tenants (
    tenant_id    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    slug         text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,62}$'),
    display_name text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);

COMMENT ON TABLE vibedata_app.tenants IS 'One row per customer tenant of the platform.';
