-- onboarding-token schema v1 (PostgreSQL). `{prefix}` is replaced by the table prefix.
-- Times are unix microseconds, UTC. Ids are raw bytes.
CREATE TABLE {prefix}tokens (
    id                BYTEA   NOT NULL PRIMARY KEY CHECK (octet_length(id) = 16),
    key_id            BYTEA   NOT NULL CHECK (octet_length(key_id) = 4),
    -- "C": byte-wise comparisons, cheaper in indexes; only equality and substr are used
    organization      TEXT    COLLATE "C" NOT NULL,
    group_path        TEXT    COLLATE "C" NOT NULL,
    -- comma-separated, in order; '' for none
    policies          TEXT    COLLATE "C" NOT NULL,
    -- NULL = unlimited
    max_uses          BIGINT  CHECK (max_uses >= 1),
    uses              BIGINT  NOT NULL DEFAULT 0
                              CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)),
    not_before        BIGINT,
    -- NULL = never
    expires_at        BIGINT,
    created_at        BIGINT  NOT NULL,
    -- UTF-8 bytes: TEXT cannot hold NUL, which descriptions and reasons may contain
    description       BYTEA   NOT NULL,
    -- JSON object as text (not JSONB, which cannot hold \u0000); NULL = none
    metadata          TEXT,
    batch_id          BYTEA,
    revoked_at        BIGINT,
    revocation_reason BYTEA
);

CREATE INDEX {prefix}tokens_by_created ON {prefix}tokens (created_at, id);
CREATE INDEX {prefix}tokens_by_org ON {prefix}tokens (organization, created_at, id);
CREATE INDEX {prefix}tokens_by_batch ON {prefix}tokens (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE {prefix}redemptions (
    token_id    BYTEA   NOT NULL REFERENCES {prefix}tokens (id),
    device_id   TEXT    COLLATE "C" NOT NULL,
    -- 1 for the first device, 2 for the second, ...
    use_number  BIGINT  NOT NULL,
    redeemed_at BIGINT  NOT NULL,
    PRIMARY KEY (token_id, device_id)
);
