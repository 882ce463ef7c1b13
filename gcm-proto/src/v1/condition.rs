//! Topic names and conditions as FCM reads them: a topic name is 1 to 900 of
//! `[a-zA-Z0-9-_.~%]`; a condition combines at most five `'name' in topics` with `&&`, `||`,
//! `!` and parentheses. Parsed once here, for the client's check and for the mock, which
//! evaluates a condition against each token's subscriptions.

use std::fmt;

/// The longest topic name FCM accepts.
pub const MAX_TOPIC_NAME: usize = 900;
/// The most topics one condition may name.
pub const MAX_CONDITION_TOPICS: usize = 5;

/// True for a topic name FCM accepts (without the `/topics/` prefix).
pub fn is_valid_topic(name: &str) -> bool {
    (1..=MAX_TOPIC_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'%'))
}

/// A parsed condition, e.g. `'a' in topics && ('b' in topics || !('c' in topics))`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `'name' in topics`.
    In(String),
    /// `!x`.
    Not(Box<Condition>),
    /// `x && y`.
    And(Box<Condition>, Box<Condition>),
    /// `x || y`.
    Or(Box<Condition>, Box<Condition>),
}

/// Why a condition does not parse: what was expected, at which byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionError {
    /// The byte offset of the problem.
    pub at: usize,
    /// What the parser expected there.
    pub expected: &'static str,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {} at byte {}", self.expected, self.at)
    }
}

impl std::error::Error for ConditionError {}

impl Condition {
    /// Parses `text`; topic names inside are not checked here (see [`Condition::topics`]).
    pub fn parse(text: &str) -> Result<Self, ConditionError> {
        let mut parser = Parser { text, at: 0, depth: 0 };
        let condition = parser.or()?;
        parser.skip_blanks();
        if parser.at < text.len() {
            return Err(parser.expected("&&, || or the end"));
        }
        Ok(condition)
    }

    /// The topics named, in order, each as often as it is named.
    pub fn topics(&self) -> Vec<&str> {
        let mut topics = Vec::new();
        self.collect(&mut topics);
        topics
    }

    fn collect<'a>(&'a self, into: &mut Vec<&'a str>) {
        match self {
            Self::In(topic) => into.push(topic),
            Self::Not(inner) => inner.collect(into),
            Self::And(a, b) | Self::Or(a, b) => {
                a.collect(into);
                b.collect(into);
            }
        }
    }

    /// Whether a device subscribed to the topics for which `subscribed` is true matches.
    pub fn matches(&self, subscribed: &impl Fn(&str) -> bool) -> bool {
        match self {
            Self::In(topic) => subscribed(topic),
            Self::Not(inner) => !inner.matches(subscribed),
            Self::And(a, b) => a.matches(subscribed) && b.matches(subscribed),
            Self::Or(a, b) => a.matches(subscribed) || b.matches(subscribed),
        }
    }
}

/// Recursive descent: `or := and ('||' and)*`, `and := not ('&&' not)*`,
/// `not := '!' not | '(' or ')' | quoted 'in' 'topics'`.
struct Parser<'a> {
    text: &'a str,
    at: usize,
    /// Nesting, bounded so that hostile input cannot exhaust the stack.
    depth: usize,
}

/// Deeper than any condition of five topics needs.
const MAX_DEPTH: usize = 32;

impl Parser<'_> {
    fn rest(&self) -> &str {
        self.text.get(self.at..).unwrap_or_default()
    }

    fn skip_blanks(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_blanks();
        let found = self.rest().starts_with(token);
        if found {
            self.at += token.len();
        }
        found
    }

    fn expected(&self, what: &'static str) -> ConditionError {
        ConditionError { at: self.at, expected: what }
    }

    fn or(&mut self) -> Result<Condition, ConditionError> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, ConditionError> {
        let mut left = self.not()?;
        while self.eat("&&") {
            left = Condition::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Condition, ConditionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.expected("less nesting"));
        }
        let result = if self.eat("!") {
            self.not().map(|inner| Condition::Not(Box::new(inner)))
        } else if self.eat("(") {
            let inner = self.or()?;
            if self.eat(")") { Ok(inner) } else { Err(self.expected(")")) }
        } else {
            self.membership()
        };
        self.depth -= 1;
        result
    }

    /// `'name' in topics` (or with double quotes).
    fn membership(&mut self) -> Result<Condition, ConditionError> {
        self.skip_blanks();
        let quote = match self.rest().chars().next() {
            Some(quote @ ('\'' | '"')) => quote,
            _ => return Err(self.expected("'topic' in topics")),
        };
        let start = self.at + 1;
        let Some(length) = self.text.get(start..).and_then(|rest| rest.find(quote)) else {
            return Err(ConditionError { at: self.text.len(), expected: "a closing quote" });
        };
        let name = self.text.get(start..start + length).unwrap_or_default().to_owned();
        self.at = start + length + 1;
        let keyword = |parser: &mut Self, word: &'static str| {
            parser.skip_blanks();
            let rest = parser.rest();
            let ends = rest.get(word.len()..).is_none_or(|after| !after.starts_with(|c: char| c.is_alphanumeric()));
            if rest.starts_with(word) && ends {
                parser.at += word.len();
                Ok(())
            } else {
                Err(parser.expected(word))
            }
        };
        keyword(self, "in")?;
        keyword(self, "topics")?;
        Ok(Condition::In(name))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test may fail loudly
    use super::*;

    #[test]
    fn conditions_parse_as_fcm_reads_them() {
        let parsed = Condition::parse("'a' in topics && ('b' in topics || !(\"c\" in topics))").unwrap();
        assert_eq!(parsed.topics(), ["a", "b", "c"]);
        let only_a = |topic: &str| topic == "a";
        assert!(parsed.matches(&only_a));
        assert!(!parsed.matches(&|topic: &str| topic == "b"));
        // && binds tighter than ||
        let parsed = Condition::parse("'a' in topics || 'b' in topics && 'c' in topics").unwrap();
        assert!(parsed.matches(&only_a));

        for (bad, at) in [
            ("this is not a condition", 0),
            ("'a' in topics &&", 16),
            ("'a' in topic", 7),
            ("'a' in topicsx", 7),
            ("('a' in topics", 14),
            ("'a in topics", 12),
            ("'a' in topics 'b' in topics", 14),
            ("", 0),
        ] {
            assert_eq!(Condition::parse(bad).map_err(|e| e.at), Err(at), "{bad:?}");
        }
        let deep = format!("{}'a' in topics{}", "(".repeat(100), ")".repeat(100));
        assert!(Condition::parse(&deep).is_err());
    }

    #[test]
    fn topic_names_are_fcm_s_alphabet_up_to_900_bytes() {
        assert!(is_valid_topic("news-2024_eu.~%41"));
        assert!(is_valid_topic(&"a".repeat(900)));
        for bad in ["", "bad topic!", "/topics/news", "é", &"a".repeat(901)] {
            assert!(!is_valid_topic(bad), "{bad:?}");
        }
    }
}
