//! The reqwest helper calling an API behind the layer: the bearer header is added, and
//! a 401 gets one more try with a fresh token.

use std::time::Duration;

use serde_json::{Value, json};
use tessera_client::resource::TokenVerifier;
use tessera_client::{AuthorizedClient, ClientCredentials, TokenSource};

use crate::resource::api;
use crate::server::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_replaced_and_the_call_sent_once_more() {
    let server = TestServer::start().await;
    let (id, secret) = server
        .create_app(json!({"name": "caller", "scopes": ["read"], "token_format": "opaque"}))
        .await;
    let verifier = TokenVerifier::builder(server.issuer(), server.issuer())
        .introspection(ClientCredentials::basic(&id, &*secret))
        .revocation_delay(Duration::ZERO)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reports = format!("http://{}/reports", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api(verifier)).await });

    let source = TokenSource::new().unwrap();
    let request = server.request(ClientCredentials::basic(&id, &*secret));
    let client = AuthorizedClient::new(reqwest::Client::new(), source.clone(), request.clone());
    let before = server.tokens_issued().await;

    let response = client.send(client.http().get(&reports)).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["client_id"], id);
    assert_eq!(server.tokens_issued().await - before, 1);

    // The server revokes the held token: the API answers 401, the helper gets a new
    // token and the second try succeeds.
    let held = source.token(&request).await.unwrap();
    server
        .revoke(&id, &secret, held.access_token().expose())
        .await;
    let response = client.send(client.http().get(&reports)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.tokens_issued().await - before, 2);
    assert_ne!(source.token(&request).await.unwrap(), held);

    // A request without a usable token from anywhere comes back as the API's 401.
    let stranger = AuthorizedClient::new(
        reqwest::Client::new(),
        source,
        server.request(ClientCredentials::basic(&id, "wrong")),
    );
    let err = stranger
        .send(stranger.http().get(&reports))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid_client"), "{err}");
}
