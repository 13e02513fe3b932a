//! The resumable, sans-IO evaluator: [`Execution::next`] returns what the server must do and
//! takes back how it went.

mod route;
mod vars;

use std::sync::Arc;

use crate::api::{
    Action, CallContext, DbOutcome, DbRequest, DialOutcome, Directory, Greeting, HttpOutcome,
    HttpRequest, StepResult, Target,
};
use crate::model::{BlockId, ContextId, DialStrategy, GreetingChoice, Plan, Step, StepKind};
use crate::parse::describe_matcher;
use route::rule_matches;
use vars::{CallVars, json_at, url_encode};

/// Steps run between two actions before the call is ended as a loop.
const STEP_BUDGET: usize = 1000;

/// A place on the stack of step lists being run.
#[derive(Debug, Clone, Copy)]
enum Frame {
    Block {
        block: BlockId,
        next: usize,
    },
    /// When reached, the menu at `at` plays again (after its `invalid` steps).
    ReplayMenu {
        at: StepAt,
        tries: u32,
    },
}

/// Where a step sits: a block and an index in it.
#[derive(Debug, Clone, Copy)]
struct StepAt {
    block: BlockId,
    index: usize,
}

/// What the last action waits for.
#[derive(Debug, Clone)]
enum Waiting {
    Nothing,
    /// `trunk`: the target rung was a trunk (its answer may end an `in_order` list).
    Dial {
        at: StepAt,
        rest: Vec<Target>,
        trunk: bool,
    },
    Menu {
        at: StepAt,
        tries: u32,
    },
    Http {
        at: StepAt,
    },
    Read {
        at: StepAt,
    },
    Db {
        at: StepAt,
    },
}

/// One call going through the plan. It owns an `Arc` of the plan it started with, so a reload
/// never changes a call in progress.
#[derive(Debug)]
pub struct Execution {
    plan: Arc<Plan>,
    call: CallContext,
    vars: CallVars,
    /// The context of the rule being run (a `goto` without `context` stays in it).
    rule_context: Option<ContextId>,
    stack: Vec<Frame>,
    waiting: Waiting,
    started: bool,
    finished: Option<Action>,
    last_dial: Option<DialOutcome>,
    pub(crate) log: Option<Vec<String>>,
}

impl Plan {
    /// Starts routing a call. Nothing happens until [`Execution::next`].
    pub fn route(self: &Arc<Self>, call: &CallContext) -> Execution {
        let mut vars = CallVars::default();
        vars.set("number", call.dialed.clone());
        vars.set("caller", call.caller.clone());
        vars.set("caller_name", call.caller_name.clone());
        Execution {
            plan: Arc::clone(self),
            call: call.clone(),
            vars,
            rule_context: None,
            stack: Vec::new(),
            waiting: Waiting::Nothing,
            started: false,
            finished: None,
            last_dial: None,
            log: None,
        }
    }
}

impl Execution {
    /// The plan this call runs on.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The current value of a variable (`number`, `caller_name`, one set by `set`...).
    pub fn var(&self, name: &str) -> &str {
        self.vars.get(name)
    }

    /// Advances the call: give `None` the first time, then the result of the last action.
    /// After a final action ([`Action::is_final`]) it keeps returning that action.
    #[must_use]
    pub fn next(&mut self, directory: &dyn Directory, input: Option<StepResult>) -> Action {
        if let Some(done) = &self.finished {
            return done.clone();
        }
        let action = if self.started {
            self.resume(directory, input)
        } else {
            self.started = true;
            self.start(directory)
        };
        let action = match action {
            Some(action) => action,
            None => self.run(directory),
        };
        if action.is_final() {
            self.finished = Some(action.clone());
        }
        action
    }

    /// Context, permission and first rule. `Some` when the call ends at once.
    fn start(&mut self, directory: &dyn Directory) -> Option<Action> {
        let plan = Arc::clone(&self.plan);
        let context = match &self.call.caller_context {
            Some(name) => plan.by_name.get(name).copied(),
            None => plan.context_of(&self.call.caller),
        };
        let Some(context) = context else {
            let reason = match &self.call.caller_context {
                Some(name) => format!("no context named {name}"),
                None => format!("caller {} is in no context", self.call.caller),
            };
            return Some(Action::Refused {
                status: 403,
                reason,
            });
        };
        let name = plan.contexts[context.0].name.clone();
        self.vars.set("context", name.clone());
        note(&mut self.log, || {
            format!("caller {} is in context {name}", self.call.caller)
        });
        if let Err(reason) = plan.permits(context, &self.call.dialed, directory) {
            return Some(Action::Refused {
                status: 403,
                reason,
            });
        }
        let number = self.call.dialed.clone();
        self.enter(directory, context, &number)
    }

    /// Routes `number` through `context`'s rules; `Some(NoRoute)` when none matches.
    fn enter(
        &mut self,
        directory: &dyn Directory,
        context: ContextId,
        number: &str,
    ) -> Option<Action> {
        let plan = Arc::clone(&self.plan);
        let Some(found) = plan.find_rule(context, number, directory) else {
            let name = &plan.contexts[context.0].name;
            let reason = format!("no rule in context {name} matches {number}");
            return Some(Action::NoRoute {
                status: 404,
                reason,
            });
        };
        self.start_rule(found.context, found.rule, found.captures, "matches");
        None
    }

    fn start_rule(&mut self, context: ContextId, rule: usize, captures: Vec<String>, how: &str) {
        let plan = Arc::clone(&self.plan);
        let c = &plan.contexts[context.0];
        let r = &c.rules[rule];
        note(&mut self.log, || {
            let caps: String = captures
                .iter()
                .enumerate()
                .map(|(i, v)| format!(" ${{{}}}={v}", i + 1))
                .collect();
            format!(
                "context {}: rule at line {} ({}) {how} {}{caps}",
                c.name,
                r.line,
                describe_matcher(&r.matcher),
                self.vars.get("number")
            )
        });
        self.vars.captures = captures;
        self.rule_context = Some(context);
        self.stack.clear();
        self.stack.push(Frame::Block {
            block: r.steps,
            next: 0,
        });
    }

    /// Takes the result of the action the call was waiting on.
    fn resume(&mut self, directory: &dyn Directory, input: Option<StepResult>) -> Option<Action> {
        let plan = Arc::clone(&self.plan);
        match std::mem::replace(&mut self.waiting, Waiting::Nothing) {
            Waiting::Nothing => None,
            Waiting::Dial {
                at,
                mut rest,
                trunk,
            } => {
                let outcome = match input {
                    Some(StepResult::Dial(o)) => o,
                    _ => DialOutcome::Unavailable,
                };
                if outcome == DialOutcome::Answered {
                    note(&mut self.log, || {
                        "  answered: the call is bridged; the plan ends with it".into()
                    });
                    return Some(Action::End);
                }
                // Failover: after a trunk, only its failure (408, 5xx, no answer in time,
                // down, full) tries the next target; busy, no answer and a refused number are
                // the call's answer (docs/dialplan.md, "Trunks and failover").
                let next_allowed = !trunk || outcome == DialOutcome::Unavailable;
                if !rest.is_empty() && !next_allowed {
                    note(&mut self.log, || {
                        format!(
                            "  the trunk's answer is {}: no other target is tried",
                            outcome.as_str()
                        )
                    });
                }
                if !rest.is_empty() && next_allowed {
                    let next = rest.remove(0);
                    return Some(self.dial_action(at, vec![next], rest));
                }
                self.after_dial(&plan, at, outcome);
                None
            }
            Waiting::Menu { at, tries } => {
                let digits = match input {
                    Some(StepResult::Digits(d)) => d,
                    _ => String::new(),
                };
                self.menu_input(&plan, at, tries, digits)
            }
            Waiting::Read { at } => {
                self.read_input(&plan, at, input);
                None
            }
            Waiting::Db { at } => {
                self.db_input(&plan, at, input);
                None
            }
            Waiting::Http { at } => {
                let StepKind::HttpLookup(step) = &plan.step(at).kind else {
                    return None;
                };
                let answer = match input {
                    Some(StepResult::Http(HttpOutcome::Response { status, body }))
                        if (200..300).contains(&status) =>
                    {
                        serde_json::from_str::<serde_json::Value>(&body)
                            .map_err(|e| format!("answer is not JSON: {e}"))
                    }
                    Some(StepResult::Http(HttpOutcome::Response { status, .. })) => {
                        Err(format!("status {status}"))
                    }
                    Some(StepResult::Http(HttpOutcome::Failed(why))) => Err(why),
                    _ => Err("no answer".to_owned()),
                };
                match answer {
                    Ok(json) => {
                        for (name, path) in &step.assign {
                            let value = json_at(&json, path);
                            note(&mut self.log, || {
                                format!("  set {name} = {value:?} (from {path})")
                            });
                            self.vars.set(name, value);
                        }
                    }
                    Err(why) => {
                        note(&mut self.log, || format!("  http_lookup failed: {why}"));
                        if let Some(block) = step.on_failure {
                            self.push(block);
                        }
                    }
                }
                let _ = directory;
                None
            }
        }
    }

    /// The digits a `read` collected go into its variable.
    fn read_input(&mut self, plan: &Plan, at: StepAt, input: Option<StepResult>) {
        let StepKind::Read(read) = &plan.step(at).kind else {
            return;
        };
        let digits = match input {
            Some(StepResult::Digits(d)) => d,
            _ => String::new(),
        };
        note(&mut self.log, || {
            format!("  set {} = {digits:?} (read)", read.var)
        });
        self.vars.set(&read.var, digits);
    }

    /// The first row of a `db_lookup` fills its variables; no row or a failure runs
    /// `on_failure`.
    fn db_input(&mut self, plan: &Plan, at: StepAt, input: Option<StepResult>) {
        let StepKind::DbLookup(step) = &plan.step(at).kind else {
            return;
        };
        let failure = match input {
            Some(StepResult::Db(DbOutcome::Row(columns))) => {
                for (name, column) in &step.assign {
                    let value = columns
                        .iter()
                        .find(|(c, _)| c.eq_ignore_ascii_case(column))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    note(&mut self.log, || {
                        format!("  set {name} = {value:?} (column {column})")
                    });
                    self.vars.set(name, value);
                }
                return;
            }
            Some(StepResult::Db(DbOutcome::NoRow)) => "no row".to_owned(),
            Some(StepResult::Db(DbOutcome::Failed(why))) => why,
            _ => "no answer".to_owned(),
        };
        note(&mut self.log, || format!("  db_lookup: {failure}"));
        for (name, _) in &step.assign {
            self.vars.set(name, String::new());
        }
        if let Some(block) = step.on_failure {
            self.push(block);
        }
    }

    fn after_dial(&mut self, plan: &Plan, at: StepAt, outcome: DialOutcome) {
        self.last_dial = Some(outcome);
        self.vars.set("dial_status", outcome.as_str().to_owned());
        if let StepKind::Dial(step) = &plan.step(at).kind {
            let branch = match outcome {
                DialOutcome::Busy => step.on_busy,
                DialOutcome::NoAnswer => step.on_no_answer,
                DialOutcome::Unavailable | DialOutcome::Rejected | DialOutcome::Answered => {
                    step.on_unavailable
                }
            };
            if let Some(block) = branch {
                self.push(block);
            }
        }
    }

    fn menu_input(
        &mut self,
        plan: &Plan,
        at: StepAt,
        tries: u32,
        digits: String,
    ) -> Option<Action> {
        let StepKind::Menu(menu) = &plan.step(at).kind else {
            return None;
        };
        self.vars.set("digits", digits.clone());
        if let Some((_, block)) = menu.options.iter().find(|(d, _)| *d == digits) {
            note(&mut self.log, || format!("  menu input {digits:?}: option"));
            self.push(*block);
            return None;
        }
        let tries = tries + 1;
        if tries > menu.retries {
            note(&mut self.log, || {
                format!("  menu input {digits:?}: invalid, no tries left")
            });
            return match menu.on_failure {
                Some(block) => {
                    self.push(block);
                    None
                }
                None => Some(Action::Hangup {
                    status: 480,
                    reason: "no valid menu choice".into(),
                }),
            };
        }
        note(&mut self.log, || {
            format!(
                "  menu input {digits:?}: invalid, try {} of {}",
                tries + 1,
                menu.retries + 1
            )
        });
        match menu.invalid {
            Some(block) => {
                self.stack.push(Frame::ReplayMenu { at, tries });
                self.push(block);
                None
            }
            None => Some(self.menu_action(plan, at, tries)),
        }
    }

    fn push(&mut self, block: BlockId) {
        self.stack.push(Frame::Block { block, next: 0 });
    }

    /// Runs steps until one needs the server.
    fn run(&mut self, directory: &dyn Directory) -> Action {
        let plan = Arc::clone(&self.plan);
        for _ in 0..STEP_BUDGET {
            let Some(frame) = self.stack.last_mut() else {
                return Action::End;
            };
            let at = match frame {
                Frame::ReplayMenu { at, tries } => {
                    let (at, tries) = (*at, *tries);
                    self.stack.pop();
                    return self.menu_action(&plan, at, tries);
                }
                Frame::Block { block, next } => {
                    let at = StepAt {
                        block: *block,
                        index: *next,
                    };
                    if *next >= plan.blocks[block.0].len() {
                        self.stack.pop();
                        continue;
                    }
                    *next += 1;
                    at
                }
            };
            if let Some(action) = self.step(&plan, directory, at) {
                return action;
            }
        }
        note(&mut self.log, || {
            "loop: too many steps without waiting for the call".into()
        });
        Action::Failed {
            status: 500,
            reason: format!("dialplan loop: more than {STEP_BUDGET} steps in a row"),
        }
    }

    /// Runs one step; `Some` when the server must act.
    fn step(&mut self, plan: &Plan, directory: &dyn Directory, at: StepAt) -> Option<Action> {
        let step = plan.step(at);
        let line = step.line;
        let expand = |t: &crate::template::Template| t.expand(&self.vars);
        match &step.kind {
            StepKind::Answer => Some(Action::Answer),
            StepKind::Echo => Some(Action::Echo),
            StepKind::Playback { prompt } => Some(Action::Playback {
                prompt: expand(prompt),
            }),
            StepKind::Voicemail { mailbox, greeting } => {
                let greeting = match greeting {
                    GreetingChoice::Busy => Greeting::Busy,
                    GreetingChoice::Unavailable => Greeting::Unavailable,
                    GreetingChoice::Auto if self.last_dial == Some(DialOutcome::Busy) => {
                        Greeting::Busy
                    }
                    GreetingChoice::Auto => Greeting::Unavailable,
                };
                Some(Action::Voicemail {
                    mailbox: expand(mailbox),
                    greeting,
                })
            }
            StepKind::VoicemailMenu { mailbox } => Some(Action::VoicemailMenu {
                mailbox: mailbox.as_ref().map(expand),
            }),
            StepKind::Hangup { status, reason } => Some(Action::Hangup {
                status: *status,
                reason: reason.clone(),
            }),
            StepKind::Dial(dial) => {
                let mut targets: Vec<Target> = dial
                    .targets
                    .iter()
                    .map(|t| (t.source().starts_with(crate::api::TRUNK_PREFIX), expand(t)))
                    .filter(|(_, n)| !n.is_empty())
                    .map(|(trunk, n)| Target::classify(n, trunk, directory))
                    // A trunk target whose number expanded to nothing rings nothing.
                    .filter(|t| !t.number().is_empty())
                    .collect();
                if targets.is_empty() {
                    note(&mut self.log, || {
                        format!("  line {line}: dial has no target left: unavailable")
                    });
                    self.after_dial(plan, at, DialOutcome::Unavailable);
                    return None;
                }
                let rest = match dial.strategy {
                    DialStrategy::All => Vec::new(),
                    DialStrategy::InOrder => targets.split_off(1),
                };
                Some(self.dial_action(at, targets, rest))
            }
            StepKind::Menu(_) => Some(self.menu_action(plan, at, 0)),
            StepKind::HttpLookup(http) => {
                let url = http.url.expand_with(&self.vars, url_encode);
                let request = HttpRequest {
                    method: http.method,
                    url,
                    body: http.body.as_ref().map(expand),
                    timeout: http.timeout,
                };
                self.waiting = Waiting::Http { at };
                Some(Action::HttpLookup(request))
            }
            StepKind::Read(read) => {
                // The call collects digits as a menu does; the result goes into `var`.
                self.waiting = Waiting::Read { at };
                Some(Action::Menu {
                    prompt: read.prompt.expand(&self.vars),
                    max_digits: read.max_digits,
                    timeout: read.timeout,
                })
            }
            StepKind::Say(say) => Some(Action::Say {
                kind: say.kind,
                value: expand(&say.value),
            }),
            StepKind::DbLookup(db) => {
                let request = DbRequest {
                    database: db.database.clone(),
                    query: db.query.clone(),
                    params: db.params.iter().map(expand).collect(),
                    timeout: db.timeout,
                };
                self.waiting = Waiting::Db { at };
                Some(Action::DbLookup(request))
            }
            StepKind::Set(assignments) => {
                for (name, template) in assignments {
                    let value = template.expand(&self.vars);
                    note(&mut self.log, || {
                        format!("  line {line}: set {name} = {value:?}")
                    });
                    self.vars.set(name, value);
                }
                None
            }
            StepKind::IfTime {
                condition,
                then,
                otherwise,
            } => {
                let holds = condition.holds(self.call.now);
                note(&mut self.log, || {
                    let local = condition.local(self.call.now);
                    let day = local.weekday();
                    let branch = if holds {
                        "then"
                    } else if otherwise.is_some() {
                        "else"
                    } else {
                        "no match, go on"
                    };
                    format!(
                        "  line {line}: if_time at {} {day:?} ({}): {branch}",
                        local.strftime("%Y-%m-%d %H:%M"),
                        condition.zone_name
                    )
                });
                match (holds, otherwise) {
                    (true, _) => self.push(*then),
                    (false, Some(block)) => self.push(*block),
                    (false, None) => {}
                }
                None
            }
            StepKind::Goto(goto) => self.goto(plan, directory, goto, line),
        }
    }

    fn goto(
        &mut self,
        plan: &Plan,
        directory: &dyn Directory,
        goto: &crate::model::GotoStep,
        line: usize,
    ) -> Option<Action> {
        let context = match &goto.context {
            Some(name) => plan.by_name.get(name).copied(),
            None => self.rule_context,
        }?;
        if let Some(number) = &goto.number {
            let number = number.expand(&self.vars);
            self.vars.set("number", number);
        }
        let number = self.vars.get("number").to_owned();
        let name = &plan.contexts[context.0].name;
        match &goto.label {
            Some(label) => {
                note(&mut self.log, || {
                    format!("  line {line}: goto {name} label {label} with number {number}")
                });
                let rule = *plan.contexts[context.0].labels.get(label)?;
                let r = &plan.contexts[context.0].rules[rule];
                let captures = rule_matches(r, &number, directory).unwrap_or_default();
                self.start_rule(context, rule, captures, "reached by goto with");
                None
            }
            None => {
                note(&mut self.log, || {
                    format!("  line {line}: goto context {name} with number {number}")
                });
                self.enter(directory, context, &number)
            }
        }
    }

    fn dial_action(&mut self, at: StepAt, targets: Vec<Target>, rest: Vec<Target>) -> Action {
        let StepKind::Dial(dial) = &self.plan.step(at).kind else {
            return Action::End;
        };
        let timeout = dial.timeout;
        let trunk = targets.iter().any(|t| matches!(t, Target::Trunk { .. }));
        self.waiting = Waiting::Dial { at, rest, trunk };
        Action::Dial {
            targets,
            timeout,
            caller_name: self.vars.get("caller_name").to_owned(),
        }
    }

    fn menu_action(&mut self, plan: &Plan, at: StepAt, tries: u32) -> Action {
        let StepKind::Menu(menu) = &plan.step(at).kind else {
            return Action::End;
        };
        self.waiting = Waiting::Menu { at, tries };
        Action::Menu {
            prompt: menu.prompt.expand(&self.vars),
            max_digits: menu.max_digits,
            timeout: menu.timeout,
        }
    }
}

/// Adds a trace line when tracing; `line` is not run otherwise.
fn note(log: &mut Option<Vec<String>>, line: impl FnOnce() -> String) {
    if let Some(log) = log {
        log.push(line());
    }
}

impl Plan {
    fn step(&self, at: StepAt) -> &Step {
        &self.blocks[at.block.0][at.index]
    }
}
