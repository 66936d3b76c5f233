-- Clients take turns at the outbox: a claim reads, for each client, how many of its
-- events are in flight and its first few due ones, each an index range, so its cost
-- follows the number of clients, not the backlog of one whose receiver hangs.
CREATE INDEX callback_events_client_due ON callback_events (client_pk, next_attempt_at) WHERE status = 'pending';
CREATE INDEX callback_events_client_leased ON callback_events (client_pk, lease_until) WHERE status = 'pending';
DROP INDEX callback_events_due;
