-- Health (DESIGN §5): every check result is kept (the history), and health_status holds the
-- current status per check plus the overall one, with when it last changed.

CREATE TYPE registry.health_state AS ENUM ('healthy', 'degraded', 'unhealthy', 'unknown');

-- One Health Bootstrap (or later scheduled) run.
CREATE TABLE registry.health_runs (
    run_id         uuid                  PRIMARY KEY DEFAULT gen_random_uuid(),
    deployment_id  text                  NOT NULL,
    started_at     timestamptz           NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    overall        registry.health_state,
    binary_version text                  NOT NULL,
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);

-- Append-only: one row per check per run.
CREATE TABLE registry.health_results (
    result_key   bigint                GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       uuid                  NOT NULL REFERENCES registry.health_runs (run_id) ON DELETE CASCADE,
    check_name   text                  NOT NULL,
    resource_key bigint                REFERENCES registry.resources (resource_key) ON DELETE SET NULL,
    state        registry.health_state NOT NULL,
    detail       text                  NOT NULL DEFAULT '',
    -- The Azure or Postgres error code of a failed check.
    code         text,
    duration_ms  integer               NOT NULL CHECK (duration_ms >= 0),
    checked_at   timestamptz           NOT NULL DEFAULT now(),
    UNIQUE (run_id, check_name)
);

CREATE INDEX health_results_history_idx ON registry.health_results (check_name, checked_at DESC);

-- The current state per check; check_name 'overall' is the platform's overall status. `since`
-- moves only on a transition, which is what the health phase counts as a change.
CREATE TABLE registry.health_status (
    check_name      text                  PRIMARY KEY,
    state           registry.health_state NOT NULL,
    since           timestamptz           NOT NULL DEFAULT now(),
    last_checked_at timestamptz           NOT NULL DEFAULT now(),
    last_result_key bigint                REFERENCES registry.health_results (result_key) ON DELETE SET NULL,
    detail          text                  NOT NULL DEFAULT '',
    CHECK (last_checked_at >= since)
);
