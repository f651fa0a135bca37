//! The process-wide TLS crypto provider every HTTPS and `wss://` client needs.

/// reqwest and tokio-tungstenite are built without a rustls provider of their own, and rustls
/// panics when the first client is built if none is installed. Every place that builds a client
/// calls this (a no-op after the first call, or when `main` already installed one), so a library
/// user or a test never depends on who happened to build a client first.
pub fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn installing_twice_is_harmless_and_a_client_builds() {
        super::ensure_crypto_provider();
        super::ensure_crypto_provider();
        reqwest::Client::builder()
            .build()
            .expect("a client builds once a provider is installed");
    }
}
