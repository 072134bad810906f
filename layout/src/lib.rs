//! Force-directed layout of the dependency map: a pure, allocation-stable simulation the web UI
//! steps once per animation frame (so the map stays fluid at 2,000 nodes and 5,000 edges), kept
//! out of the UI crate so it is tested and benchmarked on the host.
//!
//! The model is d3-force's: velocity Verlet with decay, a many-body repulsion approximated by a
//! Barnes–Hut quadtree ([`quadtree`]), springs on edges weighted by the endpoints' degrees, and a
//! weak pull of every node towards its group's anchor (one anchor per group on a circle, or the
//! origin when nothing is grouped). `alpha` cools geometrically; the layout is settled when it
//! falls below [`ALPHA_MIN`], and dragging a node warms it again.

mod quadtree;

use quadtree::QuadTree;

/// Below this temperature the layout is settled and [`Layout::step`] does nothing.
pub const ALPHA_MIN: f32 = 0.001;
/// Cooling per step: about 300 steps from hot to settled.
const ALPHA_DECAY: f32 = 0.0228;
/// Fraction of velocity lost per step.
const VELOCITY_DECAY: f32 = 0.4;
/// Many-body strength (negative: nodes repel).
const CHARGE: f32 = -40.0;
/// Barnes–Hut opening criterion: a cell this much narrower than its distance counts as one body.
const THETA: f32 = 0.9;
/// Rest length of an edge's spring.
const LINK_DISTANCE: f32 = 40.0;
/// Pull towards the group anchor (or the origin).
const GRAVITY: f32 = 0.04;

/// A node's place and motion.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    /// Horizontal position.
    pub x: f32,
    /// Vertical position.
    pub y: f32,
}

/// The simulation of one map.
#[derive(Clone, Debug)]
pub struct Layout {
    pos: Vec<Point>,
    vel: Vec<Point>,
    pinned: Vec<Option<Point>>,
    edges: Vec<(u32, u32)>,
    /// Per edge: spring strength and the share of the correction the source takes.
    springs: Vec<(f32, f32)>,
    anchors: Vec<Point>,
    group: Vec<u32>,
    alpha: f32,
    tree: QuadTree,
}

impl Layout {
    /// A layout of `n` nodes joined by `edges` (pairs of node indexes; out-of-range pairs and
    /// self-loops are ignored), each node in `groups[i]` (empty: no grouping). Nodes start on a
    /// phyllotaxis spiral, so the same input always lays out the same way.
    pub fn new(n: usize, edges: &[(u32, u32)], groups: &[u32]) -> Self {
        let edges: Vec<(u32, u32)> = edges
            .iter()
            .copied()
            .filter(|&(a, b)| a != b && (a as usize) < n && (b as usize) < n)
            .collect();
        let mut degree = vec![0u32; n];
        for &(a, b) in &edges {
            degree[a as usize] += 1;
            degree[b as usize] += 1;
        }
        let springs = edges
            .iter()
            .map(|&(a, b)| {
                let (da, db) = (degree[a as usize] as f32, degree[b as usize] as f32);
                (1.0 / da.min(db), da / (da + db))
            })
            .collect();
        let group: Vec<u32> = if groups.len() == n {
            groups.to_vec()
        } else {
            vec![0; n]
        };
        let groups_count = group.iter().copied().max().map_or(1, |g| g as usize + 1);
        let anchors = anchors(groups_count, n);
        let golden = std::f32::consts::PI * (3.0 - 5f32.sqrt());
        let pos = (0..n)
            .map(|i| {
                let r = 10.0 * (0.5 + i as f32).sqrt();
                let a = i as f32 * golden;
                let anchor = anchors[group[i] as usize];
                Point {
                    x: anchor.x + r * a.cos(),
                    y: anchor.y + r * a.sin(),
                }
            })
            .collect();
        Layout {
            pos,
            vel: vec![Point::default(); n],
            pinned: vec![None; n],
            edges,
            springs,
            anchors,
            group,
            alpha: 1.0,
            tree: QuadTree::default(),
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.pos.len()
    }

    /// True for a layout of no nodes.
    pub fn is_empty(&self) -> bool {
        self.pos.is_empty()
    }

    /// Where each node is.
    pub fn positions(&self) -> &[Point] {
        &self.pos
    }

    /// The edges kept (valid pairs, no self-loops).
    pub fn edges(&self) -> &[(u32, u32)] {
        &self.edges
    }

    /// Current temperature.
    pub fn alpha(&self) -> f32 {
        self.alpha
    }

    /// True once the layout has cooled down.
    pub fn settled(&self) -> bool {
        self.alpha < ALPHA_MIN
    }

    /// Starts node `i` at `at` instead of its place on the spiral (to keep a node where an
    /// earlier map of the same network had it).
    pub fn place(&mut self, i: usize, at: Point) {
        if let Some(p) = self.pos.get_mut(i) {
            *p = at;
        }
    }

    /// Sets the temperature (clamped to 0..=1): low for a map that mostly kept its places.
    pub fn set_alpha(&mut self, alpha: f32) {
        self.alpha = alpha.clamp(0.0, 1.0);
    }

    /// Warms the layout to at least `alpha` (after a drag or a change), so it moves again.
    pub fn reheat(&mut self, alpha: f32) {
        self.alpha = self.alpha.max(alpha.min(1.0));
    }

    /// Holds node `i` at `at` (while it is dragged); `None` lets it go.
    pub fn pin(&mut self, i: usize, at: Option<Point>) {
        if let Some(slot) = self.pinned.get_mut(i) {
            *slot = at;
            if let Some(p) = at {
                self.pos[i] = p;
                self.vel[i] = Point::default();
            }
        }
    }

    /// The node nearest to `at` within `radius`, if any.
    pub fn node_at(&self, at: Point, radius: f32) -> Option<usize> {
        let mut best = None;
        let mut best_d = radius * radius;
        for (i, p) in self.pos.iter().enumerate() {
            let d = (p.x - at.x).powi(2) + (p.y - at.y).powi(2);
            if d <= best_d {
                best_d = d;
                best = Some(i);
            }
        }
        best
    }

    /// The smallest box holding every node: `(min, max)`, or `None` with no nodes.
    pub fn bounds(&self) -> Option<(Point, Point)> {
        let first = *self.pos.first()?;
        Some(self.pos.iter().fold((first, first), |(lo, hi), p| {
            (
                Point {
                    x: lo.x.min(p.x),
                    y: lo.y.min(p.y),
                },
                Point {
                    x: hi.x.max(p.x),
                    y: hi.y.max(p.y),
                },
            )
        }))
    }

    /// Runs one step of the simulation unless settled; returns the temperature after it.
    pub fn step(&mut self) -> f32 {
        if self.settled() || self.pos.is_empty() {
            return self.alpha;
        }
        let alpha = self.alpha;
        self.links(alpha);
        self.tree.build(&self.pos);
        for i in 0..self.pos.len() {
            let f = self.tree.repulsion(&self.pos, i, THETA);
            self.vel[i].x += f.x * CHARGE * alpha;
            self.vel[i].y += f.y * CHARGE * alpha;
            let anchor = self.anchors[self.group[i] as usize];
            self.vel[i].x += (anchor.x - self.pos[i].x) * GRAVITY * alpha;
            self.vel[i].y += (anchor.y - self.pos[i].y) * GRAVITY * alpha;
        }
        for i in 0..self.pos.len() {
            if let Some(p) = self.pinned[i] {
                self.pos[i] = p;
                self.vel[i] = Point::default();
                continue;
            }
            self.vel[i].x *= 1.0 - VELOCITY_DECAY;
            self.vel[i].y *= 1.0 - VELOCITY_DECAY;
            self.pos[i].x += self.vel[i].x;
            self.pos[i].y += self.vel[i].y;
        }
        self.alpha += (0.0 - self.alpha) * ALPHA_DECAY;
        self.alpha
    }

    /// Spring forces along the edges (d3's link force).
    fn links(&mut self, alpha: f32) {
        for (k, &(a, b)) in self.edges.iter().enumerate() {
            let (a, b) = (a as usize, b as usize);
            let (strength, bias) = self.springs[k];
            let mut dx = self.pos[b].x + self.vel[b].x - self.pos[a].x - self.vel[a].x;
            let mut dy = self.pos[b].y + self.vel[b].y - self.pos[a].y - self.vel[a].y;
            if dx == 0.0 && dy == 0.0 {
                dx = jiggle(k);
                dy = jiggle(k + 1);
            }
            let l = (dx * dx + dy * dy).sqrt();
            let scale = (l - LINK_DISTANCE) / l * alpha * strength;
            dx *= scale;
            dy *= scale;
            self.vel[b].x -= dx * bias;
            self.vel[b].y -= dy * bias;
            self.vel[a].x += dx * (1.0 - bias);
            self.vel[a].y += dy * (1.0 - bias);
        }
    }
}

/// One anchor per group: the origin for a single group, else evenly on a circle wide enough
/// for the groups to sit apart.
fn anchors(groups: usize, n: usize) -> Vec<Point> {
    if groups <= 1 {
        return vec![Point::default()];
    }
    let radius = 30.0 * (n as f32).sqrt().max(4.0) * (groups as f32).sqrt();
    (0..groups)
        .map(|g| {
            let a = g as f32 / groups as f32 * std::f32::consts::TAU;
            Point {
                x: radius * a.cos(),
                y: radius * a.sin(),
            }
        })
        .collect()
}

/// A tiny deterministic nudge for points that coincide.
fn jiggle(k: usize) -> f32 {
    ((k as u32).wrapping_mul(2_654_435_761) >> 16) as f32 / 65_536.0 * 1e-3 + 1e-6
}

#[cfg(test)]
mod tests;
