-- What happened after the provider accepted a message: the provider's id of it (to match its
-- status webhooks), the latest state's reason and time, and every event in order of arrival.
ALTER TABLE outbox ADD COLUMN provider_message_id TEXT;
ALTER TABLE outbox ADD COLUMN status_reason TEXT;
ALTER TABLE outbox ADD COLUMN status_at BIGINT;
CREATE INDEX outbox_provider_message_idx ON outbox(provider_message_id);

CREATE TABLE message_event (
    message_id TEXT NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    -- The provider's id of the event (Svix `svix-id`; for Twilio the message status itself),
    -- so that a redelivered event is recorded once.
    event_key TEXT NOT NULL,
    provider TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, event_key)
);
