//! What the admin commands print: aligned text for people, JSON with `--json`.

use serde::Serialize;
use tessera_proto::{
    ApplicationView, ApplicationWithSecret, AuditView, IssuedToken, RealmView, SecretRotated,
    TokensRevoked,
};

pub struct Output {
    pub json: bool,
}

impl Output {
    fn print_json<T: Serialize>(value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(err) => eprintln!("error: cannot render JSON: {err}"),
        }
    }

    fn fields(rows: &[(&str, String)]) {
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in rows {
            println!("{key:<width$}  {value}");
        }
    }

    fn table(header: &[&str], rows: &[Vec<String>]) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let line = |cells: Vec<&str>| {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            println!("{}", parts.join("  ").trim_end());
        };
        line(header.to_vec());
        for row in rows {
            line(row.iter().map(String::as_str).collect());
        }
    }

    pub fn done(&self, message: &str) {
        if self.json {
            Self::print_json(&serde_json::json!({"ok": true, "message": message}));
        } else {
            println!("{message}");
        }
    }

    pub fn realm(&self, realm: &RealmView) {
        if self.json {
            return Self::print_json(realm);
        }
        Self::fields(&[
            ("name", realm.name.clone()),
            ("issuer", realm.issuer.clone()),
            ("hosts", realm.hosts.join(", ")),
            ("token_format", realm.token_format.clone()),
            ("signing_alg", realm.signing_alg.clone()),
            ("token_prefix", realm.token_prefix.clone()),
            ("token_type", realm.token_type.clone()),
            (
                "key_rotation",
                realm
                    .key_rotation
                    .map_or_else(|| "on demand".to_owned(), |s| format!("every {s} s")),
            ),
        ]);
        let rows: Vec<Vec<String>> = realm
            .keys
            .iter()
            .map(|k| {
                vec![
                    k.kid.clone(),
                    k.alg.clone(),
                    if k.signing { "signing" } else { "" }.to_owned(),
                    k.activates_at.to_string(),
                    k.retired_at.map(|t| t.to_string()).unwrap_or_default(),
                    k.expires_at.map(|t| t.to_string()).unwrap_or_default(),
                ]
            })
            .collect();
        println!();
        Self::table(
            &["KID", "ALG", "NOW", "SIGNS FROM", "RETIRED", "UNPUBLISHED"],
            &rows,
        );
    }

    pub fn realms(&self, realms: &[RealmView]) {
        if self.json {
            return Self::print_json(&realms);
        }
        let rows: Vec<Vec<String>> = realms
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.token_format.clone(),
                    r.signing_alg.clone(),
                    r.hosts.join(","),
                    r.issuer.clone(),
                ]
            })
            .collect();
        Self::table(&["NAME", "FORMAT", "ALG", "HOSTS", "ISSUER"], &rows);
    }

    fn app_fields(app: &ApplicationView) -> Vec<(&'static str, String)> {
        vec![
            ("client_id", app.client_id.clone()),
            ("name", app.name.clone()),
            ("realm", app.realm.clone()),
            ("enabled", app.enabled.to_string()),
            ("scopes", app.scopes.join(" ")),
            (
                "default_scopes",
                app.default_scopes
                    .as_ref()
                    .map_or_else(|| "(all allowed)".to_owned(), |d| d.join(" ")),
            ),
            ("scope_required", app.scope_required.to_string()),
            ("token_ttl", format!("{}s", app.token_ttl)),
            (
                "token_format",
                app.token_format
                    .clone()
                    .unwrap_or_else(|| "(realm default)".to_owned()),
            ),
            ("auth_methods", app.auth_methods.join(", ")),
            ("audiences", app.audiences.join(", ")),
            ("quota", quota_text(app.quota.as_ref())),
        ]
    }

    pub fn app(&self, app: &ApplicationView) {
        if self.json {
            return Self::print_json(app);
        }
        Self::fields(&Self::app_fields(app));
    }

    pub fn created_app(&self, created: &ApplicationWithSecret) {
        if self.json {
            return Self::print_json(created);
        }
        let mut rows = Self::app_fields(&created.application);
        rows.insert(1, ("client_secret", created.client_secret.clone()));
        Self::fields(&rows);
        println!();
        println!("The client_secret is shown only now: store it somewhere safe.");
    }

    pub fn apps(&self, apps: &[ApplicationView]) {
        if self.json {
            return Self::print_json(&apps);
        }
        let rows: Vec<Vec<String>> = apps
            .iter()
            .map(|a| {
                vec![
                    a.client_id.clone(),
                    a.name.clone(),
                    if a.enabled { "yes" } else { "no" }.to_owned(),
                    a.scopes.join(" "),
                    format!("{}s", a.token_ttl),
                ]
            })
            .collect();
        Self::table(&["CLIENT_ID", "NAME", "ENABLED", "SCOPES", "TTL"], &rows);
    }

    pub fn audit(&self, entries: &[AuditView]) {
        if self.json {
            return Self::print_json(&entries);
        }
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    e.at_ms.div_euclid(1000).to_string(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.realm.clone(),
                    e.client_id.clone().unwrap_or_default(),
                    e.detail.to_string(),
                ]
            })
            .collect();
        Self::table(
            &[
                "SEQ",
                "AT",
                "ACTOR",
                "ACTION",
                "REALM",
                "CLIENT_ID",
                "DETAIL",
            ],
            &rows,
        );
    }

    /// Says there is a next page, on stderr so that `--json` output stays one document.
    pub fn more(&self, flag: &str) {
        eprintln!("(more: run again with {flag})");
    }

    pub fn rotated(&self, rotated: &SecretRotated) {
        if self.json {
            return Self::print_json(rotated);
        }
        let old = match rotated.previous_secret_expires_at {
            Some(at) => format!("keeps working until {at} (unix time)"),
            None => "stopped working, with every token issued so far".to_owned(),
        };
        Self::fields(&[
            ("client_id", rotated.client_id.clone()),
            ("client_secret", rotated.client_secret.clone()),
            ("old secret", old),
        ]);
    }

    pub fn token(&self, token: &IssuedToken) {
        if self.json {
            return Self::print_json(token);
        }
        Self::fields(&[
            ("access_token", token.access_token.clone()),
            ("expires_in", format!("{}s", token.expires_in)),
            ("expires_at", token.expires_at.to_string()),
            ("scope", token.scope.clone()),
        ]);
    }

    pub fn revoked(&self, revoked: &TokensRevoked) {
        if self.json {
            return Self::print_json(revoked);
        }
        println!(
            "Every token of {} issued until now no longer works.",
            revoked.client_id
        );
    }
}

/// "100/min, 10000/day", or "(none)".
fn quota_text(quota: Option<&tessera_proto::QuotaView>) -> String {
    let parts: Vec<String> = quota
        .map(|q| {
            [(q.per_minute, "min"), (q.per_day, "day")]
                .into_iter()
                .filter_map(|(n, per)| n.map(|n| format!("{n}/{per}")))
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        "(none)".to_owned()
    } else {
        parts.join(", ")
    }
}
