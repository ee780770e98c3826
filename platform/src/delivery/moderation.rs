//! Sensitive-word filtering, on the hot path of every send (before the before-send hook).
//!
//! An app's lists compile into two Aho-Corasick automata: one of the `reject` words (any
//! match fails the send) and one of the `replace` words (each match becomes asterisks, one
//! per character). Both match ASCII letters case-insensitively and work on any UTF-8 text,
//! CJK included: a match of a UTF-8 pattern in UTF-8 text always lies on character
//! boundaries.
//!
//! Compiling is far too slow to do per message, so each node caches the automata per app
//! with the app's word-list version. A change made through this node drops the entry at
//! once (`forget`); changes made through another node are noticed within `RECHECK`, when
//! the next send reads the version (one indexed row) again.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aho_corasick::{AhoCorasick, MatchKind};

use super::DeliveryError;
use crate::domain::{MessageType, WordList, WordPolicy};
use crate::ids::AppId;
use crate::store::Store;

/// How long a cached matcher is used before its version is read again.
pub const RECHECK: Duration = Duration::from_secs(1);

/// The content fields that are filtered, per message type. Other types (image, video,
/// audio, custom) carry URLs or the app's own data and pass untouched.
fn moderated_fields(t: MessageType) -> &'static [&'static str] {
    match t {
        MessageType::Text => &["text"],
        MessageType::File => &["name"],
        MessageType::Location => &["title", "address"],
        _ => &[],
    }
}

/// An app's lists, compiled.
struct Compiled {
    version: i64,
    checked_at: Instant,
    reject: Option<Arc<AhoCorasick>>,
    replace: Option<Arc<AhoCorasick>>,
}

impl Compiled {
    fn build(version: i64, lists: &[WordList]) -> Result<Self, DeliveryError> {
        let words = |p: WordPolicy| -> Vec<&str> {
            lists
                .iter()
                .filter(|l| l.policy == p)
                .flat_map(|l| l.words.iter().map(String::as_str))
                .collect()
        };
        Ok(Self {
            version,
            checked_at: Instant::now(),
            reject: automaton(&words(WordPolicy::Reject))?,
            replace: automaton(&words(WordPolicy::Replace))?,
        })
    }
}

fn automaton(words: &[&str]) -> Result<Option<Arc<AhoCorasick>>, DeliveryError> {
    if words.is_empty() {
        return Ok(None);
    }
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(words)
        .map(|a| Some(Arc::new(a)))
        .map_err(|e| DeliveryError::Internal(format!("cannot compile the word lists: {e}")))
}

/// What filtering one string found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    Replaced(String),
    Rejected,
}

/// Applies `replace` (every match masked) and `reject` automata to one string.
fn judge(text: &str, reject: Option<&AhoCorasick>, replace: Option<&AhoCorasick>) -> Verdict {
    if reject.is_some_and(|a| a.is_match(text)) {
        return Verdict::Rejected;
    }
    let Some(replace) = replace else {
        return Verdict::Clean;
    };
    let mut out = String::new();
    let mut last = 0;
    for m in replace.find_iter(text) {
        out.push_str(&text[last..m.start()]);
        out.extend(std::iter::repeat_n('*', text[m.start()..m.end()].chars().count()));
        last = m.end();
    }
    if last == 0 {
        return Verdict::Clean;
    }
    out.push_str(&text[last..]);
    Verdict::Replaced(out)
}

/// The per-node cache of compiled word lists.
pub struct WordFilter {
    store: Arc<dyn Store>,
    cache: RwLock<HashMap<AppId, Arc<Compiled>>>,
}

impl WordFilter {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Drops the app's compiled lists; the next send compiles them again. Called after
    /// this node changed them.
    pub fn forget(&self, app: &AppId) {
        self.cache.write().unwrap_or_else(|e| e.into_inner()).remove(app);
    }

    async fn compiled(&self, app: &AppId) -> Result<Arc<Compiled>, DeliveryError> {
        let cached = self.cache.read().unwrap_or_else(|e| e.into_inner()).get(app).cloned();
        if let Some(c) = &cached {
            if c.checked_at.elapsed() < RECHECK {
                return Ok(c.clone());
            }
        }
        let version = self.store.word_lists_version(app).await?;
        let fresh = match cached {
            Some(c) if c.version == version => Arc::new(Compiled {
                version,
                checked_at: Instant::now(),
                reject: c.reject.clone(),
                replace: c.replace.clone(),
            }),
            _ if version == 0 => Arc::new(Compiled::build(0, &[])?),
            _ => {
                let lists = self.store.word_lists(app).await?;
                Arc::new(Compiled::build(version, &lists)?)
            }
        };
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(app.clone(), fresh.clone());
        Ok(fresh)
    }

    /// Filters the moderated fields of `content` in place: `ContentRejected` if a reject
    /// word occurs in any of them, otherwise replace words are masked.
    pub async fn apply(
        &self,
        app: &AppId,
        msg_type: MessageType,
        content: &mut serde_json::Value,
    ) -> Result<(), DeliveryError> {
        let fields = moderated_fields(msg_type);
        if fields.is_empty() {
            return Ok(());
        }
        let compiled = self.compiled(app).await?;
        if compiled.reject.is_none() && compiled.replace.is_none() {
            return Ok(());
        }
        let Some(obj) = content.as_object_mut() else {
            return Ok(());
        };
        for field in fields {
            if let Some(serde_json::Value::String(s)) = obj.get_mut(*field) {
                match judge(s, compiled.reject.as_deref(), compiled.replace.as_deref()) {
                    Verdict::Clean => {}
                    Verdict::Replaced(masked) => {
                        metrics::counter!("tern_messages_moderated_total", "policy" => "replace").increment(1);
                        *s = masked;
                    }
                    Verdict::Rejected => {
                        metrics::counter!("tern_messages_moderated_total", "policy" => "reject").increment(1);
                        return Err(DeliveryError::ContentRejected);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn list(policy: WordPolicy, words: &[&str]) -> WordList {
        WordList {
            name: "l".into(),
            policy,
            words: words.iter().map(|w| w.to_string()).collect(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn run(lists: &[WordList], text: &str) -> Verdict {
        let c = Compiled::build(1, lists).unwrap();
        judge(text, c.reject.as_deref(), c.replace.as_deref())
    }

    #[test]
    fn replace_masks_each_character_ignoring_ascii_case() {
        let l = [list(WordPolicy::Replace, &["darn", "坏蛋"])];
        assert_eq!(
            run(&l, "DaRn it, 你这个坏蛋!"),
            Verdict::Replaced("**** it, 你这个**!".into())
        );
        assert_eq!(run(&l, "nothing here"), Verdict::Clean);
    }

    #[test]
    fn longest_match_wins_and_reject_beats_replace() {
        let l = [
            list(WordPolicy::Replace, &["bad", "badword"]),
            list(WordPolicy::Reject, &["evil"]),
        ];
        assert_eq!(run(&l, "a badword"), Verdict::Replaced("a *******".into()));
        assert_eq!(run(&l, "bad and EVIL"), Verdict::Rejected);
        // A word in both kinds of list rejects.
        let both = [list(WordPolicy::Replace, &["x"]), list(WordPolicy::Reject, &["X"])];
        assert_eq!(run(&both, "x"), Verdict::Rejected);
    }

    #[test]
    fn cjk_matches_do_not_split_characters() {
        let l = [list(WordPolicy::Replace, &["敏感"])];
        assert_eq!(run(&l, "不敏感的敏感词"), Verdict::Replaced("不**的**词".into()));
    }
}
