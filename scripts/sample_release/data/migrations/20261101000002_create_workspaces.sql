CREATE TABLE vibedata_app.workspaces (
    workspace_id uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid        NOT NULL REFERENCES vibedata_app.tenants (tenant_id) ON DELETE CASCADE,
    name         text        NOT NULL,
    settings     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE INDEX workspaces_tenant_idx ON vibedata_app.workspaces (tenant_id);
