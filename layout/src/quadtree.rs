//! The Barnes–Hut quadtree: built once per step over every node, then asked for the repulsion
//! on each node, treating a far cell as one body at its centre of mass. Cells live in one arena
//! that is reused between steps, so a step allocates nothing once the first has run.

use crate::Point;

const NONE: u32 = u32::MAX;
/// Cells deeper than this keep their points together (coincident or nearly so) instead of
/// splitting forever.
const MAX_DEPTH: u32 = 24;

#[derive(Clone, Copy, Debug)]
struct Cell {
    x0: f32,
    y0: f32,
    size: f32,
    children: [u32; 4],
    internal: bool,
    /// First point of a leaf's chain (`next` links the rest).
    first: u32,
    mass: f32,
    sx: f32,
    sy: f32,
}

impl Cell {
    fn new(x0: f32, y0: f32, size: f32) -> Self {
        Cell {
            x0,
            y0,
            size,
            children: [NONE; 4],
            internal: false,
            first: NONE,
            mass: 0.0,
            sx: 0.0,
            sy: 0.0,
        }
    }

    fn quadrant(&self, p: Point) -> usize {
        let half = self.size / 2.0;
        usize::from(p.x >= self.x0 + half) | (usize::from(p.y >= self.y0 + half) << 1)
    }

    fn child_origin(&self, q: usize) -> (f32, f32) {
        let half = self.size / 2.0;
        (
            self.x0 + if q & 1 == 1 { half } else { 0.0 },
            self.y0 + if q & 2 == 2 { half } else { 0.0 },
        )
    }
}

/// The tree, kept between steps to reuse its memory.
#[derive(Clone, Debug, Default)]
pub(crate) struct QuadTree {
    cells: Vec<Cell>,
    next: Vec<u32>,
    stack: Vec<u32>,
}

impl QuadTree {
    /// Rebuilds the tree over `pos`.
    pub(crate) fn build(&mut self, pos: &[Point]) {
        self.cells.clear();
        self.next.clear();
        self.next.resize(pos.len(), NONE);
        let Some(first) = pos.first() else { return };
        let (mut lo, mut hi) = (*first, *first);
        for p in pos {
            lo.x = lo.x.min(p.x);
            lo.y = lo.y.min(p.y);
            hi.x = hi.x.max(p.x);
            hi.y = hi.y.max(p.y);
        }
        let size = (hi.x - lo.x).max(hi.y - lo.y).max(1.0) * 1.0001;
        self.cells.push(Cell::new(lo.x, lo.y, size));
        for i in 0..pos.len() {
            self.insert(pos, i as u32);
        }
    }

    fn insert(&mut self, pos: &[Point], i: u32) {
        let p = pos[i as usize];
        let mut c = 0usize;
        let mut depth = 0;
        loop {
            let cell = &mut self.cells[c];
            cell.mass += 1.0;
            cell.sx += p.x;
            cell.sy += p.y;
            if !cell.internal {
                let j = cell.first;
                if j == NONE {
                    cell.first = i;
                    return;
                }
                let pj = pos[j as usize];
                if depth >= MAX_DEPTH || (pj.x == p.x && pj.y == p.y) {
                    self.next[i as usize] = j;
                    self.cells[c].first = i;
                    return;
                }
                // Split: the leaf's chain moves into the child its position falls in.
                cell.internal = true;
                cell.first = NONE;
                let q = cell.quadrant(pj);
                let (x0, y0) = cell.child_origin(q);
                let mut child = Cell::new(x0, y0, cell.size / 2.0);
                child.first = j;
                let mut k = j;
                while k != NONE {
                    child.mass += 1.0;
                    child.sx += pos[k as usize].x;
                    child.sy += pos[k as usize].y;
                    k = self.next[k as usize];
                }
                self.cells[c].children[q] = self.cells.len() as u32;
                self.cells.push(child);
            }
            let cell = &self.cells[c];
            let q = cell.quadrant(p);
            let child = cell.children[q];
            if child == NONE {
                let (x0, y0) = cell.child_origin(q);
                let mut leaf = Cell::new(x0, y0, cell.size / 2.0);
                leaf.first = i;
                leaf.mass = 1.0;
                leaf.sx = p.x;
                leaf.sy = p.y;
                self.cells[c].children[q] = self.cells.len() as u32;
                self.cells.push(leaf);
                return;
            }
            c = child as usize;
            depth += 1;
        }
    }

    /// The sum over the other nodes of `(other - me) * mass / distance²`, far cells taken as one
    /// body when narrower than `theta` times their distance. Multiply by a negative strength to
    /// repel.
    pub(crate) fn repulsion(&mut self, pos: &[Point], i: usize, theta: f32) -> Point {
        let mut f = Point::default();
        if self.cells.is_empty() {
            return f;
        }
        let me = pos[i];
        let theta2 = theta * theta;
        self.stack.clear();
        self.stack.push(0);
        while let Some(c) = self.stack.pop() {
            let cell = self.cells[c as usize];
            if cell.mass == 0.0 {
                continue;
            }
            if !cell.internal {
                let mut k = cell.first;
                while k != NONE {
                    if k as usize != i {
                        // Two coincident nodes must be nudged apart, not the same way.
                        let salt = (k as usize).min(i);
                        let away = if (k as usize) < i { -1.0 } else { 1.0 };
                        push(&mut f, me, pos[k as usize], 1.0, salt, away);
                    }
                    k = self.next[k as usize];
                }
                continue;
            }
            let centre = Point {
                x: cell.sx / cell.mass,
                y: cell.sy / cell.mass,
            };
            let d2 = (centre.x - me.x).powi(2) + (centre.y - me.y).powi(2);
            if cell.size * cell.size < theta2 * d2 {
                push(&mut f, me, centre, cell.mass, c as usize, 1.0);
            } else {
                self.stack
                    .extend(cell.children.iter().copied().filter(|&k| k != NONE));
            }
        }
        f
    }
}

/// Adds one body's pull on `me` to `f`; a coincident body gets a small deterministic nudge in
/// the direction `away` (±1) picks.
fn push(f: &mut Point, me: Point, other: Point, mass: f32, salt: usize, away: f32) {
    let mut dx = other.x - me.x;
    let mut dy = other.y - me.y;
    if dx == 0.0 && dy == 0.0 {
        dx = crate::jiggle(salt) * away;
        dy = crate::jiggle(salt + 7) * away;
    }
    let mut l = dx * dx + dy * dy;
    if l < 1.0 {
        l = l.sqrt();
    }
    f.x += dx * mass / l;
    f.y += dy * mass / l;
}
