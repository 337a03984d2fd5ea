CREATE TYPE vibedata_app.job_state AS ENUM ('queued', 'running', 'succeeded', 'failed', 'cancelled');

CREATE TABLE vibedata_app.ingest_jobs (
    job_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id  uuid                   NOT NULL REFERENCES vibedata_app.datasets (dataset_id) ON DELETE CASCADE,
    state       vibedata_app.job_state NOT NULL DEFAULT 'queued',
    attempt     integer                NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    error       text,
    queued_at   timestamptz            NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    CHECK (finished_at IS NULL OR started_at IS NOT NULL)
);

CREATE INDEX ingest_jobs_active_idx ON vibedata_app.ingest_jobs (state, queued_at)
    WHERE state IN ('queued', 'running');
