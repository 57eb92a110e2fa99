-- Foreign keys on the delivery log cost a trigger and a row lock for every row the relay
-- and the outcome writer insert: at ten deliveries per event, most of the log's write
-- cost. The code keeps what they kept, once per statement instead of once per row:
--   - the relay reads the endpoints it fans out to `FOR KEY SHARE`, so an endpoint
--     cannot be deleted under a pass, and deleting an endpoint deletes its deliveries
--     and their attempts in the same transaction;
--   - the outcome writer updates the delivery first and writes an attempt only for a
--     delivery it updated, and the retention sweep deletes a delivery's attempts with it.
ALTER TABLE webhook_attempts DROP CONSTRAINT IF EXISTS webhook_attempts_delivery_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT IF EXISTS webhook_deliveries_endpoint_id_fkey;
