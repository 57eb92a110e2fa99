//! The realtime engine's wiring: what `app realtime` (and `app dev`) does when its Redis
//! subscriber cannot run.

use std::time::Duration;

use switchyard::realtime::Realtime;
use tokio_util::sync::CancellationToken;

use crate::common::TestApp;

#[tokio::test]
async fn the_realtime_engine_fails_and_closes_its_sockets_when_its_subscriber_stops() {
    let app = TestApp::spawn().await;
    let realtime = Realtime::new(&app.state.settings, app.state.realtime.clone()).unwrap();
    // A subscriber already runs for this hub, so the engine's own ends at once.
    let source =
        switchyard::realtime::subscription::Source::new(&app.state.settings.redis).unwrap();
    let running = CancellationToken::new();
    let first = tokio::spawn(realtime.hub.clone().run_subscriber(source, running.clone()));

    let engine = switchyard::modes::realtime::engine(
        app.state.clone(),
        realtime.clone(),
        CancellationToken::new(),
    );
    let outcome = tokio::time::timeout(Duration::from_secs(20), engine)
        .await
        .expect("the engine stops by itself");

    let error = format!("{:#}", outcome.unwrap_err());
    assert!(error.contains("the realtime subscriber failed"), "{error}");
    assert!(error.contains("already running"), "{error}");
    assert!(realtime.hub.open().is_none(), "no new socket is taken");
    running.cancel();
    first.await.unwrap().unwrap();
    app.stop().await;
}
