//! Tokens (auth.md): HS256 JSON Web Tokens carrying the user's id, roles, teams
//! and names. Verifying one gives a [`Viewer`]; minting one is what
//! `tickets token` does for development and scripts.

use std::time::Duration;

use domain::{Actor, Role};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::users::UserProfile;

/// The secret of development mode, when no `TICKETS_JWT_SECRET` is configured.
/// Public on purpose: anybody can mint a token for a development server.
pub const DEV_SECRET: &str = "tickets-development-secret-not-for-production";

/// The claims of auth.md. Unknown claims are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    #[serde(default = "default_roles")]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

fn default_roles() -> Vec<Role> {
    vec![Role::Requester]
}

impl Claims {
    /// The profile auth.md says to record from these claims.
    pub fn profile(&self) -> UserProfile {
        UserProfile {
            id: self.sub.clone(),
            first_name: self.given_name.clone(),
            last_name: self.family_name.clone(),
            email: self.email.clone(),
            roles: self.roles.clone(),
            teams: self.teams.clone(),
        }
    }
}

/// The authenticated user of one request or socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub claims: Claims,
    pub actor: Actor,
}

impl Viewer {
    pub fn new(claims: Claims) -> Viewer {
        // A token with an empty roles array is the least privilege there is.
        let actor = Actor::new(
            claims.sub.clone(),
            claims.roles.clone(),
            claims.teams.clone(),
        );
        Viewer { claims, actor }
    }

    pub fn id(&self) -> &str {
        &self.claims.sub
    }
}

/// Why a request carries no usable token. The message is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// Signing and verifying keys for one secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &str) -> JwtKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        // An expired token is expired: no grace period a client could rely on.
        validation.leeway = 0;
        // `nbf`, when present, is honoured (auth.md, "Next round").
        validation.validate_nbf = true;
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub fn mint(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Viewer, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        match jsonwebtoken::decode::<Claims>(token.trim(), &self.decoding, &self.validation) {
            Ok(data) if data.claims.sub.trim().is_empty() => {
                Err(AuthError::Invalid("the subject is empty".into()))
            }
            Ok(data) => Ok(Viewer::new(data.claims)),
            Err(e) => Err(match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => {
                    AuthError::Invalid("the token is not valid yet (nbf)".into())
                }
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
                _ => AuthError::Invalid("malformed token".into()),
            }),
        }
    }

    /// Verifies the value of an `Authorization` header (`Bearer <token>`).
    pub fn verify_header(&self, value: Option<&str>) -> Result<Viewer, AuthError> {
        let value = value.ok_or(AuthError::Missing)?.trim();
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or_else(|| AuthError::Invalid("expected `Bearer <token>`".into()))?;
        self.verify(token)
    }
}

/// A lifetime such as `90s`, `30m`, `1h`, `7d` (a bare number is seconds).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a lifetime such as 30m, 1h or 7d"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unknown unit in '{s}': use s, m, h or d")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "alice".into(),
            exp,
            roles: vec![Role::Agent],
            teams: vec!["support".into()],
            given_name: Some("Alice".into()),
            family_name: None,
            email: None,
        }
    }

    /// A minted token verifies with the same secret and gives back its claims.
    #[test]
    fn a_minted_token_verifies_with_its_secret_only() {
        let keys = JwtKeys::new("s3cret");
        let exp = chrono::Utc::now().timestamp() + 60;
        let token = keys.mint(&claims(exp)).unwrap();
        let viewer = keys
            .verify_header(Some(&format!("Bearer {token}")))
            .unwrap();
        assert_eq!(viewer.claims, claims(exp));
        assert_eq!(viewer.actor.teams, vec!["support".to_string()]);
        assert!(matches!(
            JwtKeys::new("other").verify(&token),
            Err(AuthError::Invalid(_))
        ));
    }

    /// A token whose `nbf` lies ahead is not valid yet; once it has passed,
    /// or without one, the token is.
    #[test]
    fn a_token_is_refused_before_its_not_before_time() {
        let keys = JwtKeys::new("s3cret");
        let now = chrono::Utc::now().timestamp();
        let with_nbf = |nbf: i64| {
            let mut claims = serde_json::to_value(claims(now + 600)).unwrap();
            claims["nbf"] = nbf.into();
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(b"s3cret"),
            )
            .unwrap()
        };
        assert_eq!(
            keys.verify(&with_nbf(now + 300)),
            Err(AuthError::Invalid(
                "the token is not valid yet (nbf)".into()
            ))
        );
        assert!(keys.verify(&with_nbf(now - 5)).is_ok());
        assert!(keys.verify(&keys.mint(&claims(now + 600)).unwrap()).is_ok());
    }

    /// Expired, malformed and missing tokens are told apart, never accepted.
    #[test]
    fn expired_malformed_and_missing_tokens_are_refused() {
        let keys = JwtKeys::new("s3cret");
        let old = keys
            .mint(&claims(chrono::Utc::now().timestamp() - 10))
            .unwrap();
        assert_eq!(keys.verify(&old), Err(AuthError::Expired));
        assert!(matches!(
            keys.verify("not.a.token"),
            Err(AuthError::Invalid(_))
        ));
        assert_eq!(keys.verify_header(None), Err(AuthError::Missing));
        assert!(matches!(
            keys.verify_header(Some("Basic abc")),
            Err(AuthError::Invalid(_))
        ));
    }

    /// Roles default to REQUESTER when the claim is absent.
    #[test]
    fn roles_default_to_requester() {
        let claims: Claims =
            serde_json::from_value(serde_json::json!({"sub": "bob", "exp": 1})).unwrap();
        assert_eq!(claims.roles, vec![Role::Requester]);
        assert!(claims.teams.is_empty());
    }

    /// Lifetimes read as people write them.
    #[test]
    fn lifetimes_parse_with_their_units() {
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
