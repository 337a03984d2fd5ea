-- What the Registry and Health Bootstrap record beyond 0001/0002 (which are shipped and pinned):
--
-- * Configuration references of two more kinds: an App Service app setting (where a value lives:
--   the site and the setting's name, never its value) and a Blob location (artifact storage,
--   the registry export).
-- * Per health check: the component it belongs to, whether it is required (an optional check
--   can make its component Degraded at worst), and the observed value (e.g. the address a name
--   resolved to), next to the reason kept in `detail`.
ALTER TABLE registry.configuration_references DROP CONSTRAINT configuration_references_kind_check;
ALTER TABLE registry.configuration_references ADD CONSTRAINT configuration_references_kind_check
    CHECK (kind IN ('keyVaultSecret', 'keyVaultKey', 'keyVaultCertificate', 'appConfiguration', 'environment', 'appSetting', 'blobLocation'));

ALTER TABLE registry.health_results
    ADD COLUMN component text,
    ADD COLUMN required  boolean NOT NULL DEFAULT true,
    ADD COLUMN observed  text;

ALTER TABLE registry.health_status
    ADD COLUMN component text,
    ADD COLUMN required  boolean NOT NULL DEFAULT true,
    ADD COLUMN observed  text;

CREATE INDEX health_status_component_idx ON registry.health_status (component);
