-- onboarding-token schema v1 (SQLite). `{prefix}` is replaced by the table prefix.
-- Times are unix microseconds, UTC. Ids are raw bytes.
CREATE TABLE {prefix}tokens (
    id                BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    key_id            BLOB    NOT NULL CHECK (length(key_id) = 4),
    organization      TEXT    NOT NULL,
    group_path        TEXT    NOT NULL,
    -- comma-separated, in order; '' for none
    policies          TEXT    NOT NULL,
    -- NULL = unlimited
    max_uses          INTEGER CHECK (max_uses >= 1),
    uses              INTEGER NOT NULL DEFAULT 0
                              CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)),
    not_before        INTEGER,
    -- NULL = never
    expires_at        INTEGER,
    created_at        INTEGER NOT NULL,
    description       TEXT    NOT NULL,
    -- JSON object; NULL = none
    metadata          TEXT,
    batch_id          BLOB,
    revoked_at        INTEGER,
    revocation_reason TEXT
);

CREATE INDEX {prefix}tokens_by_created ON {prefix}tokens (created_at, id);
CREATE INDEX {prefix}tokens_by_org ON {prefix}tokens (organization, created_at, id);
CREATE INDEX {prefix}tokens_by_batch ON {prefix}tokens (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE {prefix}redemptions (
    token_id    BLOB    NOT NULL REFERENCES {prefix}tokens (id),
    device_id   TEXT    NOT NULL,
    -- 1 for the first device, 2 for the second, ...
    use_number  INTEGER NOT NULL,
    redeemed_at INTEGER NOT NULL,
    PRIMARY KEY (token_id, device_id)
) WITHOUT ROWID;
