CREATE TYPE vibedata_app.dataset_format AS ENUM ('csv', 'parquet', 'json', 'delta');

CREATE TABLE vibedata_app.datasets (
    dataset_id   uuid                        PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid                        NOT NULL REFERENCES vibedata_app.workspaces (workspace_id) ON DELETE CASCADE,
    name         text                        NOT NULL,
    format       vibedata_app.dataset_format NOT NULL,
    location     text                        NOT NULL,
    row_count    bigint                      CHECK (row_count IS NULL OR row_count >= 0),
    description  text,
    created_at   timestamptz                 NOT NULL DEFAULT now(),
    updated_at   timestamptz                 NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);
