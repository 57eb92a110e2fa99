//! The cron scheduler behind `app scheduler`: schedules from the configuration, fired into
//! job queues exactly once per tick across replicas.

pub mod cron;
