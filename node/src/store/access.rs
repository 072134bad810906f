//! The projection's users and credentials: their part of the fold and their readers. Keys in
//! the `access` tree: `u/<name>` a user, `p/<name>` its password hash, `k/<id>` a credential,
//! `h/<sha-256 hex>` → id for the credentials still usable (revoking one drops its entry, so a
//! lookup by secret finds only live ones), `l/<name>` the ids of a user's credentials, one per
//! line (a transaction cannot scan, and disabling or deleting a user revokes them all).

use proto::auth::{Credential, User};
use proto::event::EventKind;

use super::projection::{abort, decoded, Fold, Projection, TxResult, ACCESS};
use super::{from_value, to_value, StoreError};

const USER: &[u8] = b"u/";
const PASSWORD: &[u8] = b"p/";
const CREDENTIAL: &[u8] = b"k/";
const BY_HASH: &[u8] = b"h/";
const LIST: &[u8] = b"l/";

fn key(prefix: &[u8], name: &str) -> Vec<u8> {
    [prefix, name.as_bytes()].concat()
}

impl Fold<'_> {
    /// Applies a user or credential event.
    pub(super) fn access_fact(&mut self, _at: u64, kind: &EventKind) -> TxResult<()> {
        match kind {
            EventKind::UserSet {
                user,
                password_hash,
            } => {
                self.access
                    .insert(key(USER, &user.name), to_value(user.as_ref()))?;
                if let Some(hash) = password_hash {
                    self.access
                        .insert(key(PASSWORD, &user.name), hash.as_bytes())?;
                }
                if user.disabled {
                    self.revoke_all(&user.name)?;
                }
                Ok(())
            }
            EventKind::UserDeleted { name } => {
                self.access.remove(key(USER, name))?;
                self.access.remove(key(PASSWORD, name))?;
                self.revoke_all(name)
            }
            EventKind::CredentialIssued { credential } => {
                self.access.insert(
                    key(CREDENTIAL, &credential.id),
                    to_value(credential.as_ref()),
                )?;
                if !credential.revoked {
                    self.access
                        .insert(key(BY_HASH, &credential.hash), credential.id.as_bytes())?;
                }
                let list_key = key(LIST, &credential.user);
                let mut list = self
                    .access
                    .get(&list_key)?
                    .map(|v| v.to_vec())
                    .unwrap_or_default();
                list.extend_from_slice(credential.id.as_bytes());
                list.push(b'\n');
                self.access.insert(list_key, list)?;
                Ok(())
            }
            EventKind::CredentialRevoked { id } => self.revoke(id),
            _ => Ok(()),
        }
    }

    fn revoke(&mut self, id: &str) -> TxResult<()> {
        let Some(bytes) = self.access.get(key(CREDENTIAL, id))? else {
            return Ok(());
        };
        let mut credential: Credential = from_value(ACCESS, &bytes).map_err(abort)?;
        credential.revoked = true;
        self.access.remove(key(BY_HASH, &credential.hash))?;
        self.access
            .insert(key(CREDENTIAL, id), to_value(&credential))?;
        Ok(())
    }

    /// Revokes every credential of `user`, found through its list.
    fn revoke_all(&mut self, user: &str) -> TxResult<()> {
        let list_key = key(LIST, user);
        let Some(list) = self.access.remove(list_key)? else {
            return Ok(());
        };
        let ids: Vec<String> = String::from_utf8_lossy(&list)
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        for id in ids {
            self.revoke(&id)?;
        }
        Ok(())
    }
}

impl Projection {
    /// Every user, by name.
    pub fn users(&self) -> impl Iterator<Item = Result<User, StoreError>> + '_ {
        decoded(ACCESS, self.access.scan_prefix(USER))
    }

    /// How many users there are.
    pub fn user_count(&self) -> usize {
        self.access.scan_prefix(USER).count()
    }

    /// One user.
    pub fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.access
            .get(key(USER, name))?
            .map(|v| from_value(ACCESS, &v))
            .transpose()
    }

    /// A user's password hash (PHC string).
    pub fn password_hash(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .access
            .get(key(PASSWORD, name))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The live (unrevoked) credential whose secret hashes to `hash`.
    pub fn credential_by_hash(&self, hash: &str) -> Result<Option<Credential>, StoreError> {
        let Some(id) = self.access.get(key(BY_HASH, hash))? else {
            return Ok(None);
        };
        self.credential(&String::from_utf8_lossy(&id))
    }

    /// One credential by id.
    pub fn credential(&self, id: &str) -> Result<Option<Credential>, StoreError> {
        self.access
            .get(key(CREDENTIAL, id))?
            .map(|v| from_value(ACCESS, &v))
            .transpose()
    }

    /// Every credential, sessions and tokens, revoked ones included.
    pub fn credentials(&self) -> impl Iterator<Item = Result<Credential, StoreError>> + '_ {
        decoded(ACCESS, self.access.scan_prefix(CREDENTIAL))
    }
}
