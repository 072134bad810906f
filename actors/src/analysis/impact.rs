//! What breaks when assets fail: the redundancy-aware blast radius, each asset's critical
//! dependencies, and single points of failure (assets whose failure alone breaks others, dominators
//! of the dependency chains, cut vertices of the undirected map).

use std::collections::VecDeque;

use super::CallGraph;

/// How badly a failure reaches an asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImpactedNode {
    /// The asset.
    pub node: u32,
    /// Hops from the nearest failed asset.
    pub hops: u32,
    /// The failed or broken asset it depended on that brought it down (or degraded it).
    pub via: u32,
}

/// The blast radius of a failure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Impact {
    /// Assets with a need left without any server: they break, in the order they broke.
    pub broken: Vec<ImpactedNode>,
    /// Assets that lost some servers but still have one for every need.
    pub degraded: Vec<ImpactedNode>,
    /// Dependencies (edges) whose server failed or broke.
    pub lost_edges: u64,
}

/// A single point of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spof {
    /// The asset.
    pub node: u32,
    /// Assets that break when it alone fails (the size of its blast radius).
    pub breaks: u32,
    /// Assets every dependency chain of which runs through it (its dominator subtree).
    pub dominated: u32,
    /// Whether removing it splits its connected part of the map (a cut vertex).
    pub cut_vertex: bool,
    /// Assets cut off from the largest remaining piece when it is removed.
    pub separated: u32,
}

const OK: u8 = 0;
const DEGRADED: u8 = 1;
const BROKEN: u8 = 2;
const FAILED: u8 = 3;
const NONE: u32 = u32::MAX;

impl CallGraph {
    /// What breaks if `failed` fail. A client breaks when some need of it (the servers it calls
    /// on one port and protocol) has no working server left; its own callers may then break in
    /// turn. Propagation stops after `max_hops` hops. Each edge is visited at most once.
    pub fn blast_radius(&self, failed: &[u32], max_hops: u32) -> Impact {
        let mut alive = self.need_servers.clone();
        let mut state = vec![OK; self.len()];
        let mut hops = vec![0u32; self.len()];
        let mut via = vec![NONE; self.len()];
        let mut queue = VecDeque::new();
        for &f in failed {
            if (f as usize) < state.len() && state[f as usize] != FAILED {
                state[f as usize] = FAILED;
                queue.push_back(f);
            }
        }
        let mut impact = Impact::default();
        while let Some(down) = queue.pop_front() {
            let h = hops[down as usize];
            let callers = Self::range(&self.in_start, down);
            impact.lost_edges += callers.len() as u64;
            if h >= max_hops {
                continue;
            }
            for e in callers {
                let caller = self.inc[e] as usize;
                if state[caller] >= BROKEN {
                    continue;
                }
                let need = self.in_need[e] as usize;
                alive[need] -= 1;
                if state[caller] == OK {
                    hops[caller] = h + 1;
                    via[caller] = down;
                }
                if alive[need] == 0 {
                    state[caller] = BROKEN;
                    hops[caller] = h + 1;
                    via[caller] = down;
                    queue.push_back(caller as u32);
                    impact.broken.push(ImpactedNode {
                        node: caller as u32,
                        hops: h + 1,
                        via: down,
                    });
                } else if state[caller] == OK {
                    state[caller] = DEGRADED;
                }
            }
        }
        impact.degraded = (0..self.len())
            .filter(|&n| state[n] == DEGRADED)
            .map(|n| ImpactedNode {
                node: n as u32,
                hops: hops[n],
                via: via[n],
            })
            .collect();
        impact
    }

    /// Cut vertices of the map seen as an undirected graph, each with how many assets it cuts
    /// off from the largest remaining piece of its connected part. Iterative (no recursion), so
    /// deep chains cannot overflow the stack. Returns `(node, separated)` in node order.
    pub fn cut_vertices(&self) -> Vec<(u32, u32)> {
        let n = self.len();
        let mut disc = vec![NONE; n];
        let mut low = vec![0u32; n];
        let mut size = vec![1u32; n];
        let mut parent = vec![NONE; n];
        // Sum and largest of the subtree sizes each node separates.
        let mut sep_sum = vec![0u32; n];
        let mut sep_max = vec![0u32; n];
        let mut children = vec![0u32; n];
        // Position in the node's neighbour list: callees first, then callers.
        let mut cursor = vec![0u32; n];
        let mut time = 0u32;
        let mut cuts = Vec::new();
        let mut members = Vec::new();
        for root in 0..n as u32 {
            if disc[root as usize] != NONE {
                continue;
            }
            members.clear();
            let mut stack = vec![root];
            disc[root as usize] = time;
            low[root as usize] = time;
            time += 1;
            members.push(root);
            while let Some(&v) = stack.last() {
                let vi = v as usize;
                let outs = Self::range(&self.out_start, v);
                let ins = Self::range(&self.in_start, v);
                let at = cursor[vi] as usize;
                if at < outs.len() + ins.len() {
                    cursor[vi] += 1;
                    let w = if at < outs.len() {
                        self.out[outs.start + at]
                    } else {
                        self.inc[ins.start + at - outs.len()]
                    };
                    let wi = w as usize;
                    if disc[wi] == NONE {
                        parent[wi] = v;
                        children[vi] += 1;
                        disc[wi] = time;
                        low[wi] = time;
                        time += 1;
                        members.push(w);
                        stack.push(w);
                    } else if w != parent[vi] {
                        low[vi] = low[vi].min(disc[wi]);
                    }
                    continue;
                }
                stack.pop();
                let p = parent[vi];
                if p != NONE {
                    let pi = p as usize;
                    low[pi] = low[pi].min(low[vi]);
                    size[pi] += size[vi];
                    if p == root || low[vi] >= disc[pi] {
                        sep_sum[pi] += size[vi];
                        sep_max[pi] = sep_max[pi].max(size[vi]);
                    }
                }
            }
            let component = size[root as usize];
            for &v in &members {
                let vi = v as usize;
                let separated = if v == root {
                    if children[vi] < 2 {
                        continue;
                    }
                    sep_sum[vi] - sep_max[vi]
                } else {
                    if sep_sum[vi] == 0 {
                        continue;
                    }
                    let rest = component - 1 - sep_sum[vi];
                    sep_sum[vi] + rest - sep_max[vi].max(rest)
                };
                cuts.push((v, separated));
            }
        }
        cuts.sort_unstable();
        cuts
    }

    /// For every asset, how many others have every dependency chain running through it: the
    /// size of its subtree in the dominator tree of the reversed call graph, rooted at a virtual
    /// node above every asset that calls nothing (and above one asset of each cycle that never
    /// reaches such an asset). Cooper, Harvey and Kennedy's iterative algorithm over flat arrays.
    pub fn dominated_counts(&self) -> Vec<u32> {
        let n = self.len();
        if n == 0 {
            return Vec::new();
        }
        // Depth-first post order of the reversed graph (edges server → caller) from the virtual
        // root; `root_child` marks the nodes hung under the root.
        let mut post = vec![NONE; n];
        let mut order: Vec<u32> = Vec::with_capacity(n + 1);
        let mut root_child = vec![false; n];
        let mut cursor = vec![0u32; n];
        let mut stack = Vec::new();
        let sinks =
            (0..n as u32).filter(|&v| self.out_start[v as usize] == self.out_start[v as usize + 1]);
        let mut visit = |start: u32, post: &mut Vec<u32>, order: &mut Vec<u32>| {
            if post[start as usize] != NONE {
                return false;
            }
            post[start as usize] = NONE - 1; // on the stack
            stack.push(start);
            while let Some(&v) = stack.last() {
                let callers = Self::range(&self.in_start, v);
                let at = cursor[v as usize] as usize;
                if at < callers.len() {
                    cursor[v as usize] += 1;
                    let w = self.inc[callers.start + at];
                    if post[w as usize] == NONE {
                        post[w as usize] = NONE - 1;
                        stack.push(w);
                    }
                    continue;
                }
                stack.pop();
                post[v as usize] = order.len() as u32;
                order.push(v);
            }
            true
        };
        let sinks: Vec<u32> = sinks.collect();
        for s in sinks {
            if visit(s, &mut post, &mut order) {
                root_child[s as usize] = true;
            }
        }
        for v in 0..n as u32 {
            if visit(v, &mut post, &mut order) {
                root_child[v as usize] = true;
            }
        }
        let root = n as u32; // post-order number of the virtual root
        let mut idom = vec![NONE; n + 1];
        idom[root as usize] = root;
        let intersect = |idom: &[u32], mut a: u32, mut b: u32| {
            while a != b {
                while a < b {
                    a = idom[a as usize];
                }
                while b < a {
                    b = idom[b as usize];
                }
            }
            a
        };
        let mut changed = true;
        while changed {
            changed = false;
            for p in (0..n).rev() {
                let v = order[p];
                // Predecessors in the reversed graph: the servers v calls, and the root.
                let mut new = if root_child[v as usize] { root } else { NONE };
                for e in Self::range(&self.out_start, v) {
                    let q = post[self.out[e] as usize];
                    if idom[q as usize] == NONE {
                        continue;
                    }
                    new = if new == NONE {
                        q
                    } else {
                        intersect(&idom, q, new)
                    };
                }
                if new != NONE && idom[p] != new {
                    idom[p] = new;
                    changed = true;
                }
            }
        }
        // Subtree sizes: a node's immediate dominator comes later in post order.
        let mut subtree = vec![1u32; n + 1];
        for p in 0..n {
            let d = idom[p] as usize;
            if d != root as usize {
                subtree[d] += subtree[p];
            }
        }
        let mut dependents = vec![0u32; n];
        for p in 0..n {
            dependents[order[p] as usize] = subtree[p] - 1;
        }
        dependents
    }

    /// For every asset, the assets whose failure alone breaks it (its critical dependencies),
    /// as sorted node lists: the least fixpoint of "Z breaks if, for some need of Z, every
    /// server of that need is down or breaks", computed need by need as the union over Z's needs
    /// of the intersection over each need's servers. Walks callees first (one pass on an acyclic
    /// map, a few more with cycles). `None` when the sets together would exceed `budget` entries
    /// (only very deep chains of single dependencies come near it).
    pub fn critical_dependencies(&self, budget: usize) -> Option<Vec<Vec<u32>>> {
        let n = self.len();
        let order = self.callee_post_order();
        let mut critical: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut total = 0usize;
        let (mut acc, mut need_set, mut server_set, mut scratch) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        loop {
            let mut changed = false;
            for &z in &order {
                acc.clear();
                let edges = Self::range(&self.out_start, z);
                let mut e = edges.start;
                while e < edges.end {
                    let need = self.out_need[e];
                    let mut first = true;
                    while e < edges.end && self.out_need[e] == need {
                        let s = self.out[e];
                        e += 1;
                        if !first && need_set.is_empty() {
                            continue;
                        }
                        server_set.clear();
                        insert_sorted(&critical[s as usize], s, &mut server_set);
                        if first {
                            std::mem::swap(&mut need_set, &mut server_set);
                            first = false;
                        } else {
                            intersect_sorted(&need_set, &server_set, &mut scratch);
                            std::mem::swap(&mut need_set, &mut scratch);
                        }
                    }
                    union_sorted(&acc, &need_set, &mut scratch);
                    std::mem::swap(&mut acc, &mut scratch);
                    need_set.clear();
                }
                acc.retain(|&x| x != z);
                if acc != critical[z as usize] {
                    total = total + acc.len() - critical[z as usize].len();
                    if total > budget {
                        return None;
                    }
                    critical[z as usize].clone_from(&acc);
                    changed = true;
                }
            }
            if !changed {
                return Some(critical);
            }
        }
    }

    /// Every node in depth-first post order along callees: an asset comes after everything it
    /// calls, unless a cycle runs through it.
    fn callee_post_order(&self) -> Vec<u32> {
        let n = self.len();
        let mut done = vec![false; n];
        let mut cursor = vec![0u32; n];
        let mut order = Vec::with_capacity(n);
        let mut stack = Vec::new();
        for start in 0..n as u32 {
            if done[start as usize] {
                continue;
            }
            done[start as usize] = true;
            stack.push(start);
            while let Some(&v) = stack.last() {
                let callees = Self::range(&self.out_start, v);
                let at = cursor[v as usize] as usize;
                if at < callees.len() {
                    cursor[v as usize] += 1;
                    let w = self.out[callees.start + at];
                    if !done[w as usize] {
                        done[w as usize] = true;
                        stack.push(w);
                    }
                    continue;
                }
                stack.pop();
                order.push(v);
            }
        }
        order
    }

    /// Single points of failure, worst first: every asset whose failure alone breaks others
    /// (with how many), every asset others depend on through all their chains (dominators) and
    /// every cut vertex, given every asset's critical dependencies
    /// ([`CallGraph::critical_dependencies`]).
    pub fn single_points_of_failure(&self, critical: &[Vec<u32>]) -> Vec<Spof> {
        let mut breaks = vec![0u32; self.len()];
        for set in critical {
            for &x in set {
                breaks[x as usize] += 1;
            }
        }
        let dominated = self.dominated_counts();
        let mut spofs: Vec<Spof> = Vec::new();
        let mut cuts = self.cut_vertices().into_iter().peekable();
        for node in 0..self.len() {
            let cut = cuts.next_if(|(c, _)| *c as usize == node);
            if breaks[node] > 0 || dominated[node] > 0 || cut.is_some() {
                spofs.push(Spof {
                    node: node as u32,
                    breaks: breaks[node],
                    dominated: dominated[node],
                    cut_vertex: cut.is_some(),
                    separated: cut.map_or(0, |(_, s)| s),
                });
            }
        }
        spofs.sort_by(|a, b| {
            (b.breaks, b.dominated, b.separated)
                .cmp(&(a.breaks, a.dominated, a.separated))
                .then(a.node.cmp(&b.node))
        });
        spofs
    }
}

/// `set` with `x` added, into `out` (all sorted).
fn insert_sorted(set: &[u32], x: u32, out: &mut Vec<u32>) {
    let at = set.partition_point(|&y| y < x);
    out.extend_from_slice(&set[..at]);
    if set.get(at) != Some(&x) {
        out.push(x);
    }
    out.extend_from_slice(&set[at..]);
}

fn intersect_sorted(a: &[u32], b: &[u32], out: &mut Vec<u32>) {
    out.clear();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
}

fn union_sorted(a: &[u32], b: &[u32], out: &mut Vec<u32>) {
    out.clear();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}
