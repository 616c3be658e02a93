use super::*;

/// Connection strings the client cannot parse are refused as invalid, not a
/// panic; valid ones need no server.
#[tokio::test]
async fn a_bad_connection_string_is_invalid_and_a_good_one_needs_no_server() {
    for bad in [
        "",
        "postgres://localhost/tickets",
        "esdb://",
        "esdb://host:port",
        "not a url",
    ] {
        match EsdbEventStore::connect(bad).await {
            Err(StoreError::Invalid(_)) => {}
            Err(other) => panic!("{bad:?}: expected Invalid, got {other}"),
            Ok(_) => panic!("{bad:?}: accepted"),
        }
    }
    for good in [
        "esdb://127.0.0.1:1?tls=false",
        "esdb+discover://localhost:1?tls=false&maxDiscoverAttempts=1",
    ] {
        EsdbEventStore::connect(good)
            .await
            .unwrap_or_else(|e| panic!("{good:?}: {e}"));
    }
}

/// System stream names cannot be a namespace: the store's streams would be
/// hidden by its own filter.
#[tokio::test]
async fn a_system_namespace_is_invalid() {
    let refused =
        EsdbEventStore::connect_with_namespace("esdb://127.0.0.1:1?tls=false", "$ce-").await;
    assert!(matches!(refused, Err(StoreError::Invalid(_))));
}

/// A provider installed before the first client is refused up front; once
/// our first client exists, the provider it installed is expected.
#[test]
fn a_foreign_crypto_provider_is_refused_before_the_first_client() {
    assert!(matches!(
        crypto_provider_check(false, true),
        Err(StoreError::Invalid(_))
    ));
    assert!(crypto_provider_check(false, false).is_ok());
    assert!(crypto_provider_check(true, true).is_ok());
}
