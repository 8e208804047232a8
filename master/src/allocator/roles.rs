//! The role tree and its DRF order.
//!
//! Roles form a tree by `/` (`a/b` is a child of `a`). At every level the
//! children are kept sorted by weighted dominant share (share / weight), so
//! walking the tree depth first yields frameworks in hierarchical DRF order:
//! a framework in `a/b` competes among `a`'s children, and `a` competes
//! against its own siblings. A role's own frameworks form one more child of
//! it (Mesos's virtual `a/.` leaf), competing with its sub-roles as a group.
//!
//! Keys are updated on every grant and recovery (a few set operations up
//! the chain), and recomputed for every node when the cluster total
//! changes, so ordering never costs a full sort per agent.

use std::collections::{BTreeSet, HashMap};

use super::index_hash::IndexMap;
use super::qty::{KINDS, Qty};

pub type RoleId = usize;
pub type FwIdx = usize;

/// Sort key: weighted share, then creation order for stable ties. The share
/// is non-negative and finite, for which the IEEE bit pattern orders like
/// the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
struct Key {
    share: u64,
    seq: usize,
}

fn key(alloc: &Qty, total: &Qty, weight: f64, seq: usize) -> Key {
    let share = alloc.dominant_share(total) / weight;
    let share = if share.is_finite() && share > 0.0 {
        share
    } else {
        0.0
    };
    Key {
        share: share.to_bits(),
        seq,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Child {
    /// The role's own frameworks, as one group.
    Own,
    Role(RoleId),
}

/// A role's quota in `Qty` slots: `guarantee` 0 means none, `limit` `None`
/// means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quota {
    pub guarantee: Qty,
    pub limit: [Option<i64>; KINDS.len()],
}

impl Quota {
    pub fn is_none(&self) -> bool {
        self.guarantee.is_zero() && self.limit.iter().all(Option::is_none)
    }
}

#[derive(Debug)]
struct Member {
    alloc: Qty,
    key: Key,
    live: bool,
}

#[derive(Debug)]
pub struct Role {
    pub name: String,
    pub parent: Option<RoleId>,
    weight: f64,
    /// Allocated to this role and its descendants.
    pub subtree: Qty,
    /// Allocated to this role's own frameworks.
    own: Qty,
    key: Key,
    own_key: Key,
    children: BTreeSet<(Key, Child)>,
    members: IndexMap<FwIdx, Member>,
    /// Live members (active, not suppressed for this role), in order.
    order: BTreeSet<(Key, FwIdx)>,
    /// Live members in this subtree; empty subtrees are skipped.
    live: usize,
    pub quota: Quota,
    /// Allocation plus unallocated reservations of the subtree: what quota
    /// is measured against. Refreshed by the allocator every cycle.
    pub consumed: Qty,
}

#[derive(Debug)]
pub struct RoleTree {
    roles: Vec<Role>,
    by_name: HashMap<String, RoleId>,
    /// Weights set before the role existed, applied when it appears.
    weights: HashMap<String, f64>,
    /// Denominator of every share.
    total: Qty,
}

pub const ROOT: RoleId = 0;

/// Levels of the role tree that get a node of their own.
const MAX_DEPTH: usize = 16;

impl Default for RoleTree {
    fn default() -> Self {
        let mut tree = RoleTree {
            roles: Vec::new(),
            by_name: HashMap::new(),
            weights: HashMap::new(),
            total: Qty::default(),
        };
        tree.roles.push(tree.new_role(String::new(), None));
        tree
    }
}

impl RoleTree {
    fn new_role(&self, name: String, parent: Option<RoleId>) -> Role {
        let mut children = BTreeSet::new();
        let seq = self.roles.len();
        let own_key = Key { share: 0, seq: 0 };
        children.insert((own_key, Child::Own));
        Role {
            weight: self.weights.get(&name).copied().unwrap_or(1.0),
            name,
            parent,
            subtree: Qty::default(),
            own: Qty::default(),
            key: Key { share: 0, seq },
            own_key,
            children,
            members: IndexMap::default(),
            order: BTreeSet::new(),
            live: 0,
            quota: Quota::default(),
            consumed: Qty::default(),
        }
    }

    pub fn get(&self, id: RoleId) -> &Role {
        &self.roles[id]
    }

    pub fn id(&self, name: &str) -> Option<RoleId> {
        self.by_name.get(name).copied()
    }

    /// The role's id, creating it and its ancestors as needed.
    pub fn ensure(&mut self, name: &str) -> RoleId {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        // `*` is a top-level role even though it is no path.
        if name == "*" {
            return self.add_role(name, ROOT);
        }
        // Prefix by prefix, without recursion: role names come from the
        // network and may nest deeply. Empty components add no level, and
        // past `MAX_DEPTH` levels the rest of the name is one leaf, so a
        // long name cannot make a node of every prefix nor a deep tree.
        let mut parent = ROOT;
        let mut end = 0;
        for component in name.split('/').take(MAX_DEPTH) {
            end += component.len();
            if !component.is_empty() {
                let prefix = &name[..end];
                parent = match self.by_name.get(prefix) {
                    Some(id) => *id,
                    None => self.add_role(prefix, parent),
                };
            }
            end += 1;
        }
        match self.by_name.get(name) {
            Some(id) => *id,
            // A name ending in `/` still gets a node of its own.
            None => self.add_role(name, parent),
        }
    }

    fn add_role(&mut self, name: &str, parent: RoleId) -> RoleId {
        let id = self.roles.len();
        let role = self.new_role(name.to_string(), Some(parent));
        let key = role.key;
        self.roles.push(role);
        self.by_name.insert(name.to_string(), id);
        self.roles[parent].children.insert((key, Child::Role(id)));
        id
    }

    /// Whether `ancestor` is `role` or one of its ancestors.
    pub fn is_within(&self, role: RoleId, ancestor: RoleId) -> bool {
        let mut at = Some(role);
        while let Some(id) = at {
            if id == ancestor {
                return true;
            }
            at = self.roles[id].parent;
        }
        false
    }

    /// `role` and its ancestors up to (not including) the root.
    pub fn chain(&self, role: RoleId) -> impl Iterator<Item = RoleId> + '_ {
        std::iter::successors(Some(role), |id| self.roles[*id].parent).filter(|id| *id != ROOT)
    }

    pub fn set_weight(&mut self, name: &str, weight: f64) {
        self.weights.insert(name.to_string(), weight);
        if let Some(id) = self.id(name) {
            self.roles[id].weight = weight;
            self.rekey_role(id);
        }
    }

    pub fn set_quota(&mut self, id: RoleId, quota: Quota) {
        self.roles[id].quota = quota;
    }

    pub fn quota_roles(&self) -> impl Iterator<Item = RoleId> + '_ {
        (0..self.roles.len()).filter(|id| !self.roles[*id].quota.is_none())
    }

    /// Quota consumption restarts from the allocation; the caller adds
    /// unallocated reservations.
    pub fn reset_consumed(&mut self) {
        for role in &mut self.roles {
            role.consumed = role.subtree;
        }
    }

    /// Counts `q` against the quota of `role` and its ancestors.
    pub fn add_consumed(&mut self, role: RoleId, q: &Qty) {
        let mut at = Some(role);
        while let Some(id) = at {
            self.roles[id].consumed.add(q);
            at = self.roles[id].parent;
        }
    }

    pub fn add_member(&mut self, role: RoleId, fw: FwIdx, alloc: Qty, live: bool) {
        let k = key(&alloc, &self.total, 1.0, fw);
        self.roles[role].members.insert(
            fw,
            Member {
                alloc: Qty::default(),
                key: k,
                live: false,
            },
        );
        self.charge(role, fw, &alloc, true);
        self.set_live(role, fw, live);
    }

    pub fn remove_member(&mut self, role: RoleId, fw: FwIdx) {
        self.set_live(role, fw, false);
        if let Some(m) = self.roles[role].members.get(&fw) {
            let alloc = m.alloc;
            self.charge(role, fw, &alloc, false);
        }
        self.roles[role].members.remove(&fw);
    }

    /// Puts a member in or out of the allocation order.
    pub fn set_live(&mut self, role: RoleId, fw: FwIdx, live: bool) {
        let Some(m) = self.roles[role].members.get_mut(&fw) else {
            return;
        };
        if m.live == live {
            return;
        }
        m.live = live;
        let k = m.key;
        let node = &mut self.roles[role];
        if live {
            node.order.insert((k, fw));
        } else {
            node.order.remove(&(k, fw));
        }
        let ids: Vec<RoleId> =
            std::iter::successors(Some(role), |id| self.roles[*id].parent).collect();
        for id in ids {
            let node = &mut self.roles[id];
            node.live = if live {
                node.live + 1
            } else {
                node.live.saturating_sub(1)
            };
        }
    }

    /// Adds (`grant`) or removes an allocation of `fw` in `role` and
    /// re-sorts every level above it.
    pub fn charge(&mut self, role: RoleId, fw: FwIdx, q: &Qty, grant: bool) {
        let apply = |acc: &mut Qty| {
            if grant { acc.add(q) } else { acc.sub(q) }
        };
        let total = self.total;
        let node = &mut self.roles[role];
        if let Some(m) = node.members.get_mut(&fw) {
            apply(&mut m.alloc);
            let new = key(&m.alloc, &total, 1.0, fw);
            if m.live && new != m.key {
                node.order.remove(&(m.key, fw));
                node.order.insert((new, fw));
            }
            m.key = new;
        }
        apply(&mut node.own);
        self.rekey_own(role);
        let mut at = Some(role);
        while let Some(id) = at {
            apply(&mut self.roles[id].subtree);
            self.rekey_role(id);
            at = self.roles[id].parent;
        }
    }

    /// Re-sorts the role's own frameworks, as a group, among its children.
    /// The group weighs 1 like any unweighted child: the role's weight
    /// counts against its siblings, not against its own sub-roles.
    fn rekey_own(&mut self, id: RoleId) {
        let node = &mut self.roles[id];
        let new = key(&node.own, &self.total, 1.0, 0);
        if new != node.own_key {
            node.children.remove(&(node.own_key, Child::Own));
            node.children.insert((new, Child::Own));
            node.own_key = new;
        }
    }

    fn rekey_role(&mut self, id: RoleId) {
        let node = &self.roles[id];
        let Some(parent) = node.parent else {
            return;
        };
        let old = node.key;
        let new = key(&node.subtree, &self.total, node.weight, id);
        if new != old {
            self.roles[parent].children.remove(&(old, Child::Role(id)));
            self.roles[parent].children.insert((new, Child::Role(id)));
            self.roles[id].key = new;
        }
    }

    /// New share denominator: every key is recomputed.
    pub fn set_total(&mut self, total: Qty) {
        if total == self.total {
            return;
        }
        self.total = total;
        for id in 0..self.roles.len() {
            let node = &mut self.roles[id];
            let members: Vec<(FwIdx, Key, Qty, bool)> = node
                .members
                .iter()
                .map(|(fw, m)| (*fw, m.key, m.alloc, m.live))
                .collect();
            for (fw, old, alloc, live) in members {
                let new = key(&alloc, &total, 1.0, fw);
                if live {
                    node.order.remove(&(old, fw));
                    node.order.insert((new, fw));
                }
                if let Some(m) = node.members.get_mut(&fw) {
                    m.key = new;
                }
            }
            self.rekey_own(id);
            self.rekey_role(id);
        }
    }

    /// Visits live (framework, role) pairs under `start` in DRF order until
    /// `visit` returns true; returns whether it did.
    pub fn walk(&self, start: RoleId, visit: &mut impl FnMut(FwIdx, RoleId) -> bool) -> bool {
        // Recursion is bounded: `ensure` makes at most `MAX_DEPTH` levels.
        let node = &self.roles[start];
        if node.live == 0 {
            return false;
        }
        for (_, child) in &node.children {
            let stop = match child {
                Child::Own => node.order.iter().any(|(_, fw)| visit(*fw, start)),
                Child::Role(id) => self.walk(*id, visit),
            };
            if stop {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(tree: &RoleTree) -> Vec<(FwIdx, String)> {
        let mut out = Vec::new();
        tree.walk(ROOT, &mut |fw, role| {
            out.push((fw, tree.get(role).name.clone()));
            false
        });
        out
    }

    #[test]
    fn deep_and_odd_role_names_need_no_recursion() {
        let mut tree = RoleTree::default();
        let deep = vec!["r"; 200_000].join("/");
        let id = tree.ensure(&deep);
        assert_eq!(tree.get(id).name, deep);
        assert!(tree.chain(id).count() <= MAX_DEPTH + 1);
        tree.add_member(id, 7, Qty::default(), true);
        assert_eq!(order(&tree), vec![(7, deep.clone())]);
        for odd in ["a//b", "/a", "a/", ""] {
            let id = tree.ensure(odd);
            assert_eq!(tree.get(id).name, odd);
        }
        let ab = tree.ensure("a//b");
        assert_eq!(tree.get(ab).parent, tree.id("a"));
    }

    #[test]
    fn own_frameworks_compete_with_sub_roles_as_one_child() {
        let mut tree = RoleTree::default();
        tree.set_total(Qty([10_000, 0, 0, 0]));
        let a = tree.ensure("a");
        let ab = tree.ensure("a/b");
        tree.add_member(a, 1, Qty([2000, 0, 0, 0]), true);
        tree.add_member(a, 2, Qty([1000, 0, 0, 0]), true);
        tree.add_member(ab, 3, Qty([2500, 0, 0, 0]), true);
        // a's own frameworks hold 3 cpus together, a/b 2.5: a/b first,
        // then a's own in their order.
        assert_eq!(
            order(&tree),
            vec![(3, "a/b".into()), (2, "a".into()), (1, "a".into())]
        );
        // a's weight is about a against its siblings, not inside a.
        tree.set_weight("a", 10.0);
        assert_eq!(order(&tree)[0], (3, "a/b".into()));
        tree.set_weight("a/b", 0.5);
        assert_eq!(order(&tree)[0], (2, "a".into()));
    }

    #[test]
    fn hierarchical_order_by_weighted_share() {
        let mut tree = RoleTree::default();
        tree.set_total(Qty([10_000, 0, 0, 0]));
        let a = tree.ensure("a");
        let ab = tree.ensure("a/b");
        let c = tree.ensure("c");
        assert_eq!(tree.get(ab).parent, Some(a));
        tree.add_member(ab, 1, Qty([1000, 0, 0, 0]), true);
        tree.add_member(ab, 2, Qty([3000, 0, 0, 0]), true);
        tree.add_member(c, 3, Qty([2000, 0, 0, 0]), true);
        // a holds 4 cpus against c's 2: c first.
        assert_eq!(
            order(&tree),
            vec![(3, "c".into()), (1, "a/b".into()), (2, "a/b".into())]
        );
        // With weight 3, a's share is 4/3 < 2: a first.
        tree.set_weight("a", 3.0);
        assert_eq!(order(&tree)[0], (1, "a/b".into()));
        tree.set_live(ab, 1, false);
        assert_eq!(order(&tree)[0], (2, "a/b".into()));
        tree.remove_member(ab, 2);
        assert_eq!(order(&tree), vec![(3, "c".into())]);
        assert_eq!(
            tree.get(a).subtree,
            Qty([1000, 0, 0, 0]),
            "1 still holds its cpu"
        );
    }
}
