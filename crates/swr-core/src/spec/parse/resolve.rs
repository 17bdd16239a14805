//! After the line pass: what each heading and unnumbered checkbox turned out to be (task,
//! group title, criterion, checklist item), duplicate ids, then the [`TaskList`] or the
//! [`TaskSummary`].

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::builder::{Builder, Kind};
use super::lines::status_word;
use super::record::{Counted, Record};
use super::{Parsed, StatusSite, rule};
use crate::spec::{
    Checklist, ChecklistItem, ChecklistSummary, Criterion, ParseWarning, Task, TaskCounts,
    TaskList, TaskStatus, TaskSummary,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Task,
    /// A heading that titles a group, or a numbered heading that owns nothing.
    Group,
    Checklist,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    Record(usize),
    Crit(usize),
}

/// What the records turned out to be.
pub(super) struct Plan {
    /// The tasks, in file order; `None` when they are all the records, in order (the usual
    /// file, which then needs no bookkeeping per task).
    pub(super) order: Option<Vec<Slot>>,
    /// Per checklist: its section and items, in file order.
    pub(super) checklists: Vec<(usize, Vec<Slot>)>,
}

impl Plan {
    pub(super) fn slots(&self, records: usize) -> Slots<'_> {
        match &self.order {
            None => Slots::All(0..records),
            Some(order) => Slots::Listed(order.iter()),
        }
    }
}

pub(super) enum Slots<'p> {
    All(std::ops::Range<usize>),
    Listed(std::slice::Iter<'p, Slot>),
}

impl Iterator for Slots<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        match self {
            Slots::All(range) => range.next().map(Slot::Record),
            Slots::Listed(iter) => iter.next().copied(),
        }
    }
}

impl<'a, R: Record<'a>> Builder<'a, R> {
    /// Decides what each record is, now that the whole file is read.
    pub(super) fn resolve(&mut self) -> Plan {
        let n = self.records.len();
        if self.heads.is_empty() && (self.unnumbered == 0 || self.sections.len() == 1) {
            // No heading to resolve and no checklist possible: every record is a task.
            return Plan {
                order: None,
                checklists: Vec::new(),
            };
        }
        let mut role = vec![Role::Task; n];
        // Headings, inner ones first: whether a task heading titles a group depends on the
        // heading tasks beneath it.
        for h in (0..self.heads.len()).rev() {
            let head = &self.heads[h];
            let record = head.record;
            let task = match self.extras[record].kind {
                Kind::TaskHeading => {
                    let own_state = head.status_value.is_some() || head.crits.total > 0;
                    !(head.numbered_inside || (head.task_inside && !own_state))
                }
                _ => !head.numbered_inside && (head.crits.total > 0 || head.status_value.is_some()),
            };
            if !task {
                role[record] = Role::Group;
                if self.extras[record].kind == Kind::TaskHeading {
                    self.rules |= rule::HEADING;
                }
                continue;
            }
            if self.extras[record].kind == Kind::NumberedHeading {
                self.rules |= rule::HEADING;
            }
            if let Some(p) = head.parent
                && let Some(parent) = self.head_mut(p)
            {
                parent.task_inside = true;
            }
            let head = &self.heads[h];
            let status = match head.status_value {
                Some((value, line)) => match status_word(value) {
                    Some(status) => status,
                    None => {
                        let message = format!(
                            "unknown status `{value}` for task {}; read as pending",
                            self.records[record].id()
                        );
                        self.warn(line, message);
                        TaskStatus::Pending
                    }
                },
                None if head.crits.total > 0 => {
                    self.rules |= rule::HEADING;
                    head.crits.status()
                }
                None => TaskStatus::Pending,
            };
            self.records[record].set_status(status);
        }

        // Sections holding a numbered task (their ancestors too): unnumbered checkboxes
        // elsewhere are checklists, in a file that has numbered tasks at all.
        let mut numbered = vec![false; self.sections.len()];
        let mut any_numbered = false;
        for ((r, e), &role) in self.records.iter().zip(&self.extras).zip(&role) {
            let counts = match e.kind {
                Kind::Checkbox => !r.id().is_empty(),
                Kind::TaskHeading => true,
                Kind::NumberedHeading => role == Role::Task,
            };
            if counts {
                any_numbered = true;
                let mut s = e.section;
                while !numbered[s] {
                    numbered[s] = true;
                    s = self.sections[s].parent;
                }
            }
        }
        let checklist = |section: usize| any_numbered && !numbered[section];
        for ((r, e), role) in self.records.iter().zip(&self.extras).zip(role.iter_mut()) {
            if e.kind == Kind::Checkbox && r.id().is_empty() && checklist(e.section) {
                *role = Role::Checklist;
            }
        }

        // Records and orphaned criteria, merged in file order.
        let mut order = Vec::with_capacity(n);
        let mut checklists: Vec<(usize, Vec<Slot>)> = Vec::new();
        let mut add_item = |section: usize, slot: Slot| match checklists.last_mut() {
            // A section's lines are contiguous: its items are too.
            Some((s, items)) if *s == section => items.push(slot),
            _ => checklists.push((section, vec![slot])),
        };
        let mut c = 0;
        for i in 0..=n {
            let line = self.records.get(i).map_or(usize::MAX, |r| r.line());
            while let Some(crit) = self.crits.get(c).filter(|crit| crit.line < line) {
                match role[crit.owner] {
                    Role::Task => {}
                    Role::Checklist => add_item(crit.section, Slot::Crit(c)),
                    Role::Group if checklist(crit.section) => add_item(crit.section, Slot::Crit(c)),
                    Role::Group => order.push(Slot::Crit(c)),
                }
                c += 1;
            }
            match role.get(i) {
                Some(Role::Task) => order.push(Slot::Record(i)),
                Some(Role::Checklist) => add_item(self.extras[i].section, Slot::Record(i)),
                _ => {}
            }
        }
        if !checklists.is_empty() {
            self.rules |= rule::CHECKLIST;
        }
        Plan {
            order: Some(order),
            checklists,
        }
    }

    pub(super) fn slot_status(&self, slot: Slot) -> TaskStatus {
        match slot {
            Slot::Record(i) => self.records[i].status(),
            Slot::Crit(c) => self.crits[c].status,
        }
    }

    /// Warns about every author's id seen before (positional ids never collide).
    pub(super) fn duplicate_warnings(&mut self, plan: &Plan) {
        let warnings = match &plan.order {
            None => duplicates(self.records.len(), self.records.iter()),
            Some(order) => duplicates(
                order.len(),
                order.iter().filter_map(|&slot| match slot {
                    Slot::Record(i) => self.records.get(i),
                    Slot::Crit(_) => None,
                }),
            ),
        };
        self.warnings.extend(warnings);
        self.warnings.sort_by_key(|w| w.line);
    }
}

/// A warning for every author's id seen before (positional ids never collide).
pub(super) fn duplicates<'r, 'a: 'r, R: Record<'a> + 'r>(
    len: usize,
    records: impl Iterator<Item = &'r R>,
) -> Vec<ParseWarning> {
    let mut warnings = Vec::new();
    let mut first: HashMap<&str, usize, BuildHasherDefault<IdHasher>> =
        HashMap::with_capacity_and_hasher(len, Default::default());
    for r in records {
        let id = r.id();
        if id.is_empty() {
            continue;
        }
        match first.entry(id) {
            Entry::Occupied(at) => warnings.push(ParseWarning {
                line: r.line(),
                message: format!("duplicate task id `{id}` (first at line {})", at.get()),
            }),
            Entry::Vacant(slot) => {
                slot.insert(r.line());
            }
        }
    }
    warnings
}

impl<'a> Builder<'a, Counted<'a>> {
    pub(super) fn summary(mut self) -> TaskSummary {
        let plan = self.resolve();
        self.duplicate_warnings(&plan);
        let mut counts = TaskCounts::default();
        let mut optional = TaskCounts::default();
        for slot in plan.slots(self.records.len()) {
            match slot {
                Slot::Record(i) if self.records[i].optional => optional.add(self.records[i].status),
                _ => counts.add(self.slot_status(slot)),
            }
        }
        let checklists = plan
            .checklists
            .iter()
            .map(|(section, items)| ChecklistSummary {
                title: self.sections[*section].title.to_string(),
                line: self.sections[*section].line,
                total: items.len(),
                done: items
                    .iter()
                    .filter(|&&s| self.slot_status(s) == TaskStatus::Done)
                    .count(),
            })
            .collect();
        TaskSummary {
            counts,
            optional,
            checklists,
            warnings: self.warnings,
        }
    }
}

impl<'a> Builder<'a, Task> {
    /// The task list; with the status sites only when `sites` (edits need them).
    pub(super) fn finish(mut self, sites: bool) -> Parsed {
        let plan = self.resolve();
        self.duplicate_warnings(&plan);
        let checklists = self.checklists(&plan);
        let records = std::mem::take(&mut self.records);
        let (mut tasks, sites, task_of) = match &plan.order {
            // The usual file: the records are the tasks.
            None => {
                let sites = if sites {
                    (0..records.len()).map(|i| self.site(i)).collect()
                } else {
                    Vec::new()
                };
                (records, sites, None)
            }
            Some(order) => {
                let (tasks, sites, task_of) = self.tasks_in(records, order);
                (tasks, sites, Some(task_of))
            }
        };
        for c in &self.crits {
            let task = match &task_of {
                None => Some(c.owner),
                Some(task_of) => task_of.get(c.owner).copied(),
            };
            if let Some(t) = task.and_then(|t| tasks.get_mut(t)) {
                t.criteria.push(Criterion {
                    text: c.text.to_string(),
                    done: c.status == TaskStatus::Done,
                    line: c.line,
                });
            }
        }
        if self.unnumbered > 0 || task_of.is_some() {
            assign_positional_ids(&mut tasks);
        }
        Parsed {
            list: TaskList {
                tasks,
                warnings: self.warnings,
                checklists,
            },
            sites,
            rules: self.rules,
        }
    }

    pub(super) fn checklists(&mut self, plan: &Plan) -> Vec<Checklist> {
        plan.checklists
            .iter()
            .map(|(section, items)| Checklist {
                title: self.sections[*section].title.to_string(),
                line: self.sections[*section].line,
                items: items
                    .iter()
                    .map(|&s| match s {
                        Slot::Record(i) => {
                            let r = &mut self.records[i];
                            ChecklistItem {
                                text: std::mem::take(&mut r.title),
                                status: r.status,
                                line: r.line,
                            }
                        }
                        Slot::Crit(c) => {
                            let c = &self.crits[c];
                            ChecklistItem {
                                text: c.text.to_string(),
                                status: c.status,
                                line: c.line,
                            }
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// The tasks in `order` (whose records come in increasing index), their status sites,
    /// and which task each record became (`usize::MAX`: none).
    pub(super) fn tasks_in(
        &self,
        records: Vec<Task>,
        order: &[Slot],
    ) -> (Vec<Task>, Vec<StatusSite>, Vec<usize>) {
        let mut task_of = vec![usize::MAX; records.len()];
        let mut records = records.into_iter().enumerate();
        let mut tasks = Vec::with_capacity(order.len());
        let mut sites = Vec::with_capacity(order.len());
        for &slot in order {
            match slot {
                Slot::Record(i) => {
                    if let Some((_, task)) = records.by_ref().find(|&(j, _)| j == i) {
                        task_of[i] = tasks.len();
                        tasks.push(task);
                        sites.push(self.site(i));
                    }
                }
                Slot::Crit(c) => {
                    let c = &self.crits[c];
                    tasks.push(Task::new("", c.text, c.status, c.line, false));
                    sites.push(StatusSite::Checkbox { offset: c.offset });
                }
            }
        }
        (tasks, sites, task_of)
    }
}

/// Numbers unnumbered tasks by their position, unless an author's id already says that
/// number (then `line-N`).
pub(super) fn assign_positional_ids(tasks: &mut [Task]) {
    if tasks.iter().all(|t| !t.id.is_empty()) {
        return;
    }
    let taken: HashSet<String> = tasks
        .iter()
        .filter(|t| !t.id.is_empty())
        .map(|t| t.id.clone())
        .collect();
    for (pos, task) in tasks.iter_mut().enumerate() {
        if task.id.is_empty() {
            let id = (pos + 1).to_string();
            task.id = if taken.contains(&id) {
                format!("line-{}", task.line)
            } else {
                id
            };
        }
    }
}

/// FxHash-style hasher for task ids: short, trusted strings, where SipHash's DoS resistance
/// buys nothing and cost ~10% of a large parse.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
