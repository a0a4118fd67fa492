//! Risk classes of actions (docs/POLICY.md): the policy's optional
//! `tokens` member maps each action pattern (action name and resource
//! pattern) to a risk class, which says what an action token for it needs:
//! a minimum trust score, its longest lifetime, whether the agent must have
//! attested within the last N seconds, whether a human must approve, and
//! whether a resource takes the token once only. An action no rule matches
//! falls in the `default` class.
//!
//! Patterns are literal text where `*` stands for any run of characters
//! (`/` included); the first rule, in order, whose action and resource
//! patterns both match decides. Read strictly, like the rest of the policy.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

/// The name of the class of actions no rule matches.
pub const DEFAULT_CLASS: &str = "default";
/// Most named classes.
pub const MAX_CLASSES: usize = 32;
/// Most rules.
pub const MAX_RULES: usize = 256;
/// Longest pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 256;
/// Longest class name, in bytes (`[a-z0-9_-]`).
pub const MAX_CLASS_NAME: usize = 32;
/// The longest token lifetime a class may allow, seconds.
pub use crate::token::MAX_LIFETIME_S;

/// What an action token for a class of actions needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiskClass {
    /// The least trust score, at the instant of issuance (0..=100).
    pub min_score: u8,
    /// The longest token lifetime, seconds (1..=3600; default 10).
    pub max_lifetime_s: u32,
    /// The agent must have attested successfully within this many seconds
    /// (0: no fresh attestation needed).
    pub fresh_attestation_s: u32,
    /// A human approves each token (an escalation) before it is issued.
    pub human_approval: bool,
    /// A resource takes the token once only.
    pub single_use: bool,
}

impl Default for RiskClass {
    /// The built-in `default` class: score 50, 10 s, no fresh attestation,
    /// no human, single use.
    fn default() -> Self {
        Self { min_score: 50, max_lifetime_s: 10, fresh_attestation_s: 0, human_approval: false, single_use: true }
    }
}

/// One rule: actions named `action` on resources matching `resource` are
/// in class `class`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRule {
    /// The action pattern.
    pub action: String,
    /// The resource pattern.
    pub resource: String,
    /// The class (a named class, or `default`).
    pub class: String,
}

/// The policy's `tokens` member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenPolicy {
    /// The class of actions no rule matches.
    pub default: RiskClass,
    /// Named classes.
    pub classes: BTreeMap<String, RiskClass>,
    /// Rules, first match wins.
    pub rules: Vec<ActionRule>,
}

/// Why the `tokens` member is refused; the path names the member
/// (`tokens.classes.high.min_score`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassError {
    /// Not a JSON object (or, for `rules`, an array of objects).
    #[error("\"{0}\" has the wrong JSON type")]
    WrongType(String),
    /// A required member is missing.
    #[error("\"{0}\" is missing")]
    Missing(String),
    /// A member that is not read.
    #[error("\"{0}\" is not a member of the token policy")]
    Unknown(String),
    /// An integer out of its range.
    #[error("\"{path}\" is {value}, outside {min}..={max}")]
    OutOfRange {
        /// The member.
        path: String,
        /// Its value.
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// A class name other than 1..=32 of `[a-z0-9_-]`, or `default`
    /// among the named classes.
    #[error("class name {0:?} is not 1 to 32 of [a-z0-9_-] (and not \"default\")")]
    ClassName(String),
    /// A rule names a class that is not defined.
    #[error("rule {rule} names class {class:?}, which is not defined")]
    UnknownClass {
        /// The rule's position.
        rule: usize,
        /// The class it names.
        class: String,
    },
    /// A pattern that is empty or longer than [`MAX_PATTERN_CHARS`].
    #[error("rule {0} has an empty pattern or one longer than {MAX_PATTERN_CHARS} characters")]
    Pattern(usize),
    /// More classes or rules than allowed.
    #[error("more than {max} {what}")]
    TooMany {
        /// `classes` or `rules`.
        what: &'static str,
        /// The most allowed.
        max: usize,
    },
}

/// Whether `text` matches `pattern`, where `*` stands for any run of
/// characters. Linear backtracking over the last `*` only: O(|p|·|t|) at
/// worst, both bounded.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

fn class_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CLASS_NAME
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl TokenPolicy {
    /// The class of `action` on `resource`: its name and its rules.
    pub fn classify(&self, action: &str, resource: &str) -> (&str, &RiskClass) {
        for rule in &self.rules {
            if glob_match(&rule.action, action) && glob_match(&rule.resource, resource) {
                if let Some(class) = self.class(&rule.class) {
                    return (rule.class.as_str(), class);
                }
            }
        }
        (DEFAULT_CLASS, &self.default)
    }

    /// The class named `name` (`default` included).
    pub fn class(&self, name: &str) -> Option<&RiskClass> {
        if name == DEFAULT_CLASS {
            Some(&self.default)
        } else {
            self.classes.get(name)
        }
    }

    /// The member as JSON (the shape [`TokenPolicy::from_json`] reads).
    pub fn to_json(&self) -> Value {
        let classes: Map<String, Value> = self.classes.iter().map(|(k, c)| (k.clone(), class_json(c))).collect();
        let rules = self
            .rules
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("action".into(), Value::from(r.action.as_str()));
                m.insert("resource".into(), Value::from(r.resource.as_str()));
                m.insert("class".into(), Value::from(r.class.as_str()));
                Value::Object(m)
            })
            .collect();
        let mut m = Map::new();
        m.insert(DEFAULT_CLASS.into(), class_json(&self.default));
        m.insert("classes".into(), Value::Object(classes));
        m.insert("rules".into(), Value::Array(rules));
        Value::Object(m)
    }

    /// Reads the member strictly: `default`, `classes` and `rules` all
    /// present (the last two may be empty), nothing unknown.
    pub fn from_json(value: &Value) -> Result<Self, ClassError> {
        let obj = object(value, "tokens")?;
        only(obj, "tokens", &[DEFAULT_CLASS, "classes", "rules"])?;
        let default = read_class(member(obj, "tokens", DEFAULT_CLASS)?, "tokens.default")?;
        let classes_obj = object(member(obj, "tokens", "classes")?, "tokens.classes")?;
        if classes_obj.len() > MAX_CLASSES {
            return Err(ClassError::TooMany { what: "classes", max: MAX_CLASSES });
        }
        let mut classes = BTreeMap::new();
        for (name, c) in classes_obj {
            if !class_name_ok(name) || name == DEFAULT_CLASS {
                return Err(ClassError::ClassName(name.clone()));
            }
            classes.insert(name.clone(), read_class(c, &format!("tokens.classes.{name}"))?);
        }
        let Value::Array(list) = member(obj, "tokens", "rules")? else { return Err(ClassError::WrongType("tokens.rules".into())) };
        if list.len() > MAX_RULES {
            return Err(ClassError::TooMany { what: "rules", max: MAX_RULES });
        }
        let mut rules = Vec::with_capacity(list.len());
        for (i, r) in list.iter().enumerate() {
            let path = format!("tokens.rules[{i}]");
            let r = object(r, &path)?;
            only(r, &path, &["action", "resource", "class"])?;
            let text = |k: &str| match member(r, &path, k)? {
                Value::String(s) => Ok(s.clone()),
                _ => Err(ClassError::WrongType(format!("{path}.{k}"))),
            };
            let rule = ActionRule { action: text("action")?, resource: text("resource")?, class: text("class")? };
            for p in [&rule.action, &rule.resource] {
                if p.is_empty() || p.chars().count() > MAX_PATTERN_CHARS {
                    return Err(ClassError::Pattern(i));
                }
            }
            if rule.class != DEFAULT_CLASS && !classes.contains_key(&rule.class) {
                return Err(ClassError::UnknownClass { rule: i, class: rule.class });
            }
            rules.push(rule);
        }
        Ok(Self { default, classes, rules })
    }
}

fn class_json(c: &RiskClass) -> Value {
    let mut m = Map::new();
    m.insert("min_score".into(), Value::from(c.min_score));
    m.insert("max_lifetime_s".into(), Value::from(c.max_lifetime_s));
    m.insert("fresh_attestation_s".into(), Value::from(c.fresh_attestation_s));
    m.insert("human_approval".into(), Value::from(c.human_approval));
    m.insert("single_use".into(), Value::from(c.single_use));
    Value::Object(m)
}

fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, ClassError> {
    value.as_object().ok_or_else(|| ClassError::WrongType(path.to_string()))
}

fn member<'v>(obj: &'v Map<String, Value>, path: &str, name: &str) -> Result<&'v Value, ClassError> {
    obj.get(name).ok_or_else(|| ClassError::Missing(format!("{path}.{name}")))
}

fn only(obj: &Map<String, Value>, path: &str, names: &[&str]) -> Result<(), ClassError> {
    match obj.keys().find(|k| !names.contains(&k.as_str())) {
        Some(k) => Err(ClassError::Unknown(format!("{path}.{k}"))),
        None => Ok(()),
    }
}

fn read_class(value: &Value, path: &str) -> Result<RiskClass, ClassError> {
    let obj = object(value, path)?;
    only(obj, path, &["min_score", "max_lifetime_s", "fresh_attestation_s", "human_approval", "single_use"])?;
    let int = |k: &str, min: u64, max: u64| -> Result<u64, ClassError> {
        let p = format!("{path}.{k}");
        let v = member(obj, path, k)?.as_u64().ok_or_else(|| ClassError::WrongType(p.clone()))?;
        if !(min..=max).contains(&v) {
            return Err(ClassError::OutOfRange { path: p, value: v, min, max });
        }
        Ok(v)
    };
    let flag = |k: &str| member(obj, path, k)?.as_bool().ok_or_else(|| ClassError::WrongType(format!("{path}.{k}")));
    Ok(RiskClass {
        min_score: int("min_score", 0, 100)? as u8,
        max_lifetime_s: int("max_lifetime_s", 1, MAX_LIFETIME_S.into())? as u32,
        fresh_attestation_s: int("fresh_attestation_s", 0, u32::MAX.into())? as u32,
        human_approval: flag("human_approval")?,
        single_use: flag("single_use")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn globs() {
        for (p, t, ok) in [
            ("*", "", true),
            ("db.update", "db.update", true),
            ("db.*", "db.update", true),
            ("db.*", "dbx", false),
            ("sqlite://prod/*", "sqlite://prod/main/users", true),
            ("*/payments/*", "https://bank/payments/42", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("exact", "exactly", false),
            ("**x", "yyx", true),
        ] {
            assert_eq!(glob_match(p, t), ok, "{p} {t}");
        }
    }

    fn sample() -> Value {
        serde_json::json!({
            "default": {"min_score": 50, "max_lifetime_s": 10, "fresh_attestation_s": 0, "human_approval": false, "single_use": true},
            "classes": {
                "high": {"min_score": 70, "max_lifetime_s": 10, "fresh_attestation_s": 300, "human_approval": false, "single_use": true},
                "critical": {"min_score": 80, "max_lifetime_s": 30, "fresh_attestation_s": 60, "human_approval": true, "single_use": true}
            },
            "rules": [
                {"action": "payments.transfer", "resource": "*", "class": "critical"},
                {"action": "db.*", "resource": "sqlite://prod/*", "class": "high"},
                {"action": "db.read", "resource": "*", "class": "default"}
            ]
        })
    }

    #[test]
    fn first_matching_rule_decides() {
        let p = TokenPolicy::from_json(&sample()).unwrap();
        assert_eq!(p.classify("payments.transfer", "bank://x").0, "critical");
        assert_eq!(p.classify("db.update", "sqlite://prod/main").0, "high");
        assert_eq!(p.classify("db.update", "sqlite://test/main").0, "default");
        assert_eq!(p.classify("email.send", "smtp://x").0, "default");
        assert_eq!(TokenPolicy::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn refusals() {
        let with = |f: &dyn Fn(&mut Value)| {
            let mut v = sample();
            f(&mut v);
            TokenPolicy::from_json(&v).unwrap_err()
        };
        assert_eq!(
            with(&|v| v["classes"]["high"]["min_score"] = 101.into()),
            ClassError::OutOfRange { path: "tokens.classes.high.min_score".into(), value: 101, min: 0, max: 100 }
        );
        assert!(matches!(with(&|v| v["default"]["max_lifetime_s"] = 0.into()), ClassError::OutOfRange { .. }));
        assert_eq!(with(&|v| v["rules"][1]["class"] = "nope".into()), ClassError::UnknownClass { rule: 1, class: "nope".into() });
        assert_eq!(with(&|v| v["classes"]["Bad Name"] = v["default"].clone()), ClassError::ClassName("Bad Name".into()));
        assert_eq!(with(&|v| v["classes"]["default"] = v["default"].clone()), ClassError::ClassName("default".into()));
        assert_eq!(with(&|v| v["rules"][0]["action"] = "".into()), ClassError::Pattern(0));
        assert_eq!(with(&|v| v["default"]["human_approval"] = 1.into()), ClassError::WrongType("tokens.default.human_approval".into()));
        assert_eq!(with(&|v| v["extra"] = 1.into()), ClassError::Unknown("tokens.extra".into()));
        assert_eq!(with(&|v| drop(v.as_object_mut().unwrap().remove("rules"))), ClassError::Missing("tokens.rules".into()));
    }
}
