-- The relay stamps an event, not each of its deliveries, once the delivery jobs are in
-- Redis: one row write per event instead of one per delivery (ten per event with ten
-- endpoints). The sweep looks for relayed events without the stamp. Delivery rows are
-- then written by the relay once and by each attempt's outcome; with room left in each
-- page those updates stay on the page (HOT) and leave the indexes alone.
ALTER TABLE events ADD COLUMN enqueued_at timestamptz;
UPDATE events e SET enqueued_at = e.relayed_at
WHERE e.relayed_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                  WHERE d.event_id = e.id AND d.enqueued_at IS NULL AND d.status = 'pending');
CREATE INDEX events_unenqueued_idx ON events (relayed_at) WHERE enqueued_at IS NULL;

DROP INDEX webhook_deliveries_unenqueued_idx;
ALTER TABLE webhook_deliveries DROP COLUMN enqueued_at;
ALTER TABLE webhook_deliveries SET (fillfactor = 70);

-- Lookups by event use the (event_id, endpoint_id) unique index; a second index on
-- event_id alone only cost every insert.
DROP INDEX webhook_deliveries_event_idx;
