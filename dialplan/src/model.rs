//! The validated plan: what the file says, in the shape the evaluator walks.

use std::collections::HashMap;
use std::time::Duration;

use crate::pattern::DialPattern;
use crate::template::Template;
use crate::timecond::TimeCondition;

/// Index of a step list in [`Plan::blocks`]: a rule's steps, a branch of `dial`, an option
/// of `menu`...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockId(pub(crate) usize);

/// Index of a context in [`Plan::contexts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ContextId(pub(crate) usize);

/// A dialplan that passed validation. Build one with [`Plan::parse`]; route calls with
/// [`Plan::route`].
#[derive(Debug)]
pub struct Plan {
    pub(crate) path: String,
    pub(crate) default_context: Option<ContextId>,
    pub(crate) contexts: Vec<Context>,
    pub(crate) by_name: HashMap<String, ContextId>,
    pub(crate) blocks: Vec<Vec<Step>>,
    /// Every `trunk:NAME/...` dial target, where it is written.
    pub(crate) trunk_refs: Vec<TrunkRef>,
}

/// A trunk named by a dial target, and where.
#[derive(Debug, Clone)]
pub(crate) struct TrunkRef {
    pub(crate) name: String,
    pub(crate) line: usize,
    pub(crate) col: usize,
}

impl Plan {
    /// The file name given to [`Plan::parse`].
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The names of the contexts, in file order.
    /// The databases the plan's `db_lookup` steps name, each with the line of its step (the
    /// server checks them against its `[lookup.NAME]` sections).
    pub fn lookup_databases(&self) -> Vec<(&str, usize)> {
        self.blocks
            .iter()
            .flatten()
            .filter_map(|step| match &step.kind {
                StepKind::DbLookup(db) => Some((db.database.as_str(), step.line)),
                _ => None,
            })
            .collect()
    }

    pub fn context_names(&self) -> impl Iterator<Item = &str> {
        self.contexts.iter().map(|c| c.name.as_str())
    }

    /// The context (class of service) of an extension: the one whose `members` list it, else
    /// `[defaults] context`.
    pub fn context_of_extension(&self, number: &str) -> Option<&str> {
        self.context_of(number)
            .map(|c| self.contexts[c.0].name.as_str())
    }
}

#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) name: String,
    /// The extensions in this class of service.
    pub(crate) members: Vec<NumberItem>,
    pub(crate) includes: Vec<ContextId>,
    /// `None`: may call anything.
    pub(crate) may_call: Option<Vec<Permit>>,
    /// In the order they are tried.
    pub(crate) rules: Vec<Rule>,
    pub(crate) labels: HashMap<String, usize>,
    /// Exact numbers → the first rule with that `pattern`: a lookup instead of a scan.
    pub(crate) exact: HashMap<String, usize>,
    /// The other rules (patterns, regexes, `extension`), in order.
    pub(crate) scan: Vec<usize>,
}

impl Context {
    /// Builds [`Context::exact`] and [`Context::scan`] once the rules are in their order.
    pub(crate) fn index_rules(&mut self) {
        for (i, rule) in self.rules.iter().enumerate() {
            match &rule.matcher {
                Matcher::Pattern(p) if p.is_exact() => {
                    self.exact.entry(p.as_str().to_owned()).or_insert(i);
                }
                _ => self.scan.push(i),
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) matcher: Matcher,
    pub(crate) label: Option<String>,
    pub(crate) steps: BlockId,
    pub(crate) line: usize,
}

#[derive(Debug)]
pub(crate) enum Matcher {
    /// `pattern = "1000"` or `pattern = "_NXX"`.
    Pattern(DialPattern),
    /// `regex = "^9(\\d+)$"`, anchored at both ends.
    Regex(regex::Regex),
    /// `extension = true`: any number the directory knows as an extension.
    Extension,
}

/// A number, a range `1000-1099` of same-length numbers, or a pattern.
#[derive(Debug, Clone)]
pub(crate) enum NumberItem {
    Pattern(DialPattern),
    Range { low: u64, high: u64, width: usize },
}

impl NumberItem {
    pub(crate) fn parse(text: &str) -> Result<NumberItem, String> {
        if !text.starts_with('_')
            && let Some((a, b)) = text.split_once('-')
        {
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
            let bad = || format!("`{text}`: a range is FIRST-LAST with digits of one length");
            if !digits(a) || !digits(b) || a.len() != b.len() {
                return Err(bad());
            }
            let (low, high) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if low > high {
                return Err(format!("`{text}`: the range ends before it starts"));
            }
            return Ok(NumberItem::Range {
                low,
                high,
                width: a.len(),
            });
        }
        DialPattern::parse(text).map(NumberItem::Pattern)
    }

    pub(crate) fn matches(&self, number: &str) -> bool {
        match self {
            NumberItem::Pattern(p) => p.matches(number),
            NumberItem::Range { low, high, width } => {
                number.len() == *width
                    && number.bytes().all(|c| c.is_ascii_digit())
                    && number
                        .parse::<u64>()
                        .is_ok_and(|n| (*low..=*high).contains(&n))
            }
        }
    }
}

/// One entry of `may_call`.
#[derive(Debug, Clone)]
pub(crate) enum Permit {
    /// `"any"`: anything.
    Any,
    /// `"extensions"`: any extension in the directory.
    Extensions,
    /// A context name: the extensions whose class of service it is.
    Context(ContextId),
    /// A number, range or pattern.
    Numbers(NumberItem),
}

#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) kind: StepKind,
    pub(crate) line: usize,
}

#[derive(Debug)]
pub(crate) enum StepKind {
    Answer,
    Echo,
    Dial(DialStep),
    Voicemail {
        mailbox: Template,
        greeting: GreetingChoice,
    },
    VoicemailMenu {
        /// `None`: ask the caller for the mailbox number.
        mailbox: Option<Template>,
    },
    Playback {
        prompt: Template,
    },
    Menu(MenuStep),
    Goto(GotoStep),
    Hangup {
        status: u16,
        reason: String,
    },
    Set(Vec<(String, Template)>),
    IfTime {
        condition: Box<TimeCondition>,
        then: BlockId,
        otherwise: Option<BlockId>,
    },
    HttpLookup(HttpStep),
    /// Collect digits into a variable.
    Read(ReadStep),
    /// Say a value: digits, a number, a date or a time.
    Say(SayStep),
    DbLookup(DbStep),
}

impl StepKind {
    /// The step's name as written in the file.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            StepKind::Answer => "answer",
            StepKind::Echo => "echo",
            StepKind::Dial(_) => "dial",
            StepKind::Voicemail { .. } => "voicemail",
            StepKind::VoicemailMenu { .. } => "voicemail_menu",
            StepKind::Playback { .. } => "playback",
            StepKind::Menu(_) => "menu",
            StepKind::Goto(_) => "goto",
            StepKind::Hangup { .. } => "hangup",
            StepKind::Set(_) => "set",
            StepKind::IfTime { .. } => "if_time",
            StepKind::HttpLookup(_) => "http_lookup",
            StepKind::Read(_) => "read",
            StepKind::Say(_) => "say",
            StepKind::DbLookup(_) => "db_lookup",
        }
    }
}

/// Which greeting `voicemail` plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GreetingChoice {
    /// "busy" when the last `dial` found the line busy, else "unavailable".
    Auto,
    Busy,
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialStrategy {
    /// Ring every target at once; the first to answer wins.
    All,
    /// Ring one target after the other, each for the timeout.
    InOrder,
}

#[derive(Debug)]
pub(crate) struct DialStep {
    /// Group names already replaced by their members.
    pub(crate) targets: Vec<Template>,
    pub(crate) timeout: Duration,
    pub(crate) strategy: DialStrategy,
    pub(crate) on_busy: Option<BlockId>,
    pub(crate) on_no_answer: Option<BlockId>,
    pub(crate) on_unavailable: Option<BlockId>,
}

#[derive(Debug)]
pub(crate) struct MenuStep {
    pub(crate) prompt: Template,
    pub(crate) max_digits: usize,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) options: Vec<(String, BlockId)>,
    pub(crate) invalid: Option<BlockId>,
    pub(crate) on_failure: Option<BlockId>,
}

#[derive(Debug)]
pub(crate) struct GotoStep {
    /// `None`: the context the call is in.
    pub(crate) context: Option<String>,
    /// `None`: route the number through the context's rules.
    pub(crate) label: Option<String>,
    /// `None`: the number dialed.
    pub(crate) number: Option<Template>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

#[derive(Debug)]
pub(crate) struct HttpStep {
    pub(crate) method: HttpMethod,
    pub(crate) url: Template,
    pub(crate) body: Option<Template>,
    pub(crate) timeout: Duration,
    /// Variable ← JSON path (`customer.name`, `items.0.id`).
    pub(crate) assign: Vec<(String, String)>,
    pub(crate) on_failure: Option<BlockId>,
}

#[derive(Debug)]
pub(crate) struct ReadStep {
    pub(crate) var: String,
    pub(crate) prompt: Template,
    pub(crate) max_digits: usize,
    pub(crate) timeout: Duration,
}

#[derive(Debug)]
pub(crate) struct SayStep {
    pub(crate) kind: crate::api::SayKind,
    pub(crate) value: Template,
}

#[derive(Debug)]
pub(crate) struct DbStep {
    /// A `[lookup.NAME]` of the server's config.
    pub(crate) database: String,
    pub(crate) query: String,
    /// Bound to `$1`, `$2`... in order, never spliced into the query.
    pub(crate) params: Vec<Template>,
    pub(crate) timeout: Duration,
    /// Variable ← column of the first row.
    pub(crate) assign: Vec<(String, String)>,
    /// No row, an error or a timeout.
    pub(crate) on_failure: Option<BlockId>,
}
