//! The map's scene: the assets and dependencies of one topology answer as drawable nodes and
//! edges, their force layout, the view (zoom and pan), the highlights of a selection, and the
//! drawing itself on a 2D canvas (with level of detail) or as an SVG document.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use layout::{Layout, Point};
use proto::api::{Status, Topology};
use proto::role::Role;
use web_sys::CanvasRenderingContext2d;

/// A dependency unused for this long is drawn as idle.
const IDLE_AFTER_MS: f64 = 5.0 * 60_000.0;
/// Group colours (Tableau 10), repeated past ten groups.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// What the nodes are grouped (coloured and gathered) by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// One group.
    None,
    /// The /24 (IPv4) or /64 (IPv6).
    Subnet,
    /// The classification's environment, else internal/external.
    Environment,
    /// The inferred or manual role.
    Role,
    /// The classification's data centre.
    Datacenter,
    /// The federated site that reported it.
    Site,
}

impl Grouping {
    /// From the select box's value.
    pub fn parse(s: &str) -> Grouping {
        match s {
            "subnet" => Grouping::Subnet,
            "env" => Grouping::Environment,
            "role" => Grouping::Role,
            "datacenter" => Grouping::Datacenter,
            "site" => Grouping::Site,
            _ => Grouping::None,
        }
    }
}

/// How an edge looks: by the state of its dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeState {
    /// Seen in the last five minutes.
    Active,
    /// Still active but quiet for five minutes or more.
    Idle,
    /// Expired.
    Gone,
}

impl EdgeState {
    fn colour(self) -> &'static str {
        match self {
            EdgeState::Active => "#5b8def",
            EdgeState::Idle => "#9aa0a6",
            EdgeState::Gone => "#c62828",
        }
    }

    fn dash(self) -> &'static [f64] {
        match self {
            EdgeState::Active => &[],
            EdgeState::Idle => &[6.0, 4.0],
            EdgeState::Gone => &[2.0, 3.0],
        }
    }
}

/// How a node is highlighted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mark {
    /// Not highlighted.
    #[default]
    None,
    /// The selected node.
    Selected,
    /// Calls the selected node (directly or further up).
    Upstream,
    /// Called by the selected node (directly or further down).
    Downstream,
    /// Breaks when the selected node fails.
    Broken,
    /// Loses redundancy when the selected node fails.
    Degraded,
}

impl Mark {
    fn colour(self) -> Option<&'static str> {
        match self {
            Mark::None => None,
            Mark::Selected => Some("#7e57c2"),
            Mark::Upstream => Some("#1e88e5"),
            Mark::Downstream => Some("#fb8c00"),
            Mark::Broken => Some("#e53935"),
            Mark::Degraded => Some("#fdd835"),
        }
    }
}

/// One asset on the map.
#[derive(Clone, Debug)]
pub struct Node {
    /// Its address.
    pub ip: IpAddr,
    /// Its address as text.
    pub label: String,
    /// A short glyph for its role (`DB`, `LB`, …), empty when it has none.
    pub icon: &'static str,
    /// Radius in map units, by traffic.
    pub radius: f32,
    /// Index into the scene's groups.
    pub group: u32,
    /// Expired.
    pub gone: bool,
}

/// One dependency on the map, from the client (`a`) to the server (`b`).
#[derive(Clone, Debug)]
pub struct Edge {
    /// Client node.
    pub a: usize,
    /// Server node.
    pub b: usize,
    /// Line width in screen pixels, by traffic.
    pub width: f32,
    /// Active, idle or gone.
    pub state: EdgeState,
}

/// The view: screen = map × scale + offset (CSS pixels).
#[derive(Clone, Copy, Debug)]
struct View {
    scale: f32,
    tx: f32,
    ty: f32,
}

/// Everything the map draws.
pub struct Scene {
    /// The nodes, busiest first.
    pub nodes: Vec<Node>,
    /// The edges.
    pub edges: Vec<Edge>,
    /// The group names, indexed by `Node::group`.
    pub groups: Vec<String>,
    /// The layout.
    pub layout: Layout,
    /// Highlight per node.
    pub marks: Vec<Mark>,
    /// Keep fitting the map into the canvas until the user zooms or pans.
    pub auto_fit: bool,
    index: HashMap<IpAddr, usize>,
    /// Edge indexes sorted by how they are drawn, so strokes batch.
    order: Vec<usize>,
    view: View,
    width: f32,
    height: f32,
}

fn role_icon(role: Role) -> &'static str {
    match role {
        Role::Database => "DB",
        Role::CacheQueue => "Q",
        Role::Dns => "NS",
        Role::Ntp => "T",
        Role::LoadBalancer => "LB",
        Role::Gateway => "GW",
        Role::Server => "S",
        Role::Workstation => "W",
    }
}

fn subnet_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

impl Scene {
    /// The scene of `topology`, grouped by `grouping` (`sites` names each asset's site),
    /// keeping only dependencies that touch an asset of `role` when one is given; `previous`
    /// lends its positions to the assets it already had, so a refresh does not scatter the map.
    /// `now_ms` decides idle edges.
    pub fn new(
        topology: &Topology,
        grouping: Grouping,
        sites: &HashMap<IpAddr, String>,
        role: Option<Role>,
        previous: Option<&Scene>,
        now_ms: f64,
    ) -> Scene {
        let roles: HashMap<IpAddr, Role> = topology
            .nodes
            .iter()
            .filter_map(|n| Some((n.asset.ip, n.asset.role.as_ref()?.role)))
            .collect();
        let wanted = |ip: &IpAddr| role.is_none_or(|r| roles.get(ip) == Some(&r));
        let kept_edges: Vec<&proto::api::Dependency> = topology
            .edges
            .iter()
            .map(|e| &e.dependency)
            .filter(|d| d.key.client != d.key.service.ip)
            .filter(|d| wanted(&d.key.client) || wanted(&d.key.service.ip))
            .collect();
        let touched: std::collections::HashSet<IpAddr> = kept_edges
            .iter()
            .flat_map(|d| [d.key.client, d.key.service.ip])
            .collect();
        let assets: Vec<&proto::api::Asset> = topology
            .nodes
            .iter()
            .map(|n| &n.asset)
            .filter(|a| role.is_none() || wanted(&a.ip) || touched.contains(&a.ip))
            .collect();
        let mut groups: Vec<String> = Vec::new();
        let mut group_index: HashMap<String, u32> = HashMap::new();
        let max_bytes = assets
            .iter()
            .map(|a| a.bytes_in + a.bytes_out)
            .max()
            .unwrap_or(1)
            .max(1) as f32;
        let nodes: Vec<Node> = assets
            .iter()
            .map(|a| {
                let name = match grouping {
                    Grouping::None => String::new(),
                    Grouping::Subnet => subnet_of(a.ip),
                    Grouping::Environment => crate::fmt::environment(a).to_string(),
                    Grouping::Role => a
                        .role
                        .as_ref()
                        .map_or("no role", |r| r.role.name())
                        .to_string(),
                    Grouping::Datacenter => a
                        .classification
                        .as_ref()
                        .and_then(|c| c.datacenter.clone())
                        .unwrap_or_else(|| "no data centre".to_string()),
                    Grouping::Site => sites
                        .get(&a.ip)
                        .cloned()
                        .unwrap_or_else(|| "this node".to_string()),
                };
                let next = groups.len() as u32;
                let group = *group_index.entry(name.clone()).or_insert_with(|| {
                    groups.push(name);
                    next
                });
                let traffic = (a.bytes_in + a.bytes_out).max(1) as f32;
                Node {
                    ip: a.ip,
                    label: a.ip.to_string(),
                    icon: a.role.as_ref().map_or("", |r| role_icon(r.role)),
                    radius: 5.0 + 9.0 * (traffic.ln() / max_bytes.ln().max(1.0)).clamp(0.0, 1.0),
                    group,
                    gone: a.status == Status::Expired,
                }
            })
            .collect();
        let index: HashMap<IpAddr, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.ip, i)).collect();
        let max_edge = kept_edges
            .iter()
            .map(|d| d.bytes_to_server + d.bytes_to_client)
            .max()
            .unwrap_or(1)
            .max(2) as f32;
        let edges: Vec<Edge> = kept_edges
            .iter()
            .filter_map(|d| {
                let a = *index.get(&d.key.client)?;
                let b = *index.get(&d.key.service.ip)?;
                let traffic = (d.bytes_to_server + d.bytes_to_client).max(1) as f32;
                let state = if d.status == Status::Expired {
                    EdgeState::Gone
                } else if now_ms - d.last_seen_ms as f64 > IDLE_AFTER_MS {
                    EdgeState::Idle
                } else {
                    EdgeState::Active
                };
                // Widths in half-pixel steps, so strokes of one look batch together.
                let w = 1.0 + 4.0 * (traffic.ln() / max_edge.ln()).clamp(0.0, 1.0);
                Some(Edge {
                    a,
                    b,
                    width: (w * 2.0).round() / 2.0,
                    state,
                })
            })
            .collect();
        let pairs: Vec<(u32, u32)> = edges.iter().map(|e| (e.a as u32, e.b as u32)).collect();
        let group_ids: Vec<u32> = nodes.iter().map(|n| n.group).collect();
        let mut layout = Layout::new(nodes.len(), &pairs, &group_ids);
        let mut view = View {
            scale: 1.0,
            tx: 0.0,
            ty: 0.0,
        };
        let mut auto_fit = true;
        let (mut width, mut height) = (800.0, 600.0);
        if let Some(prev) = previous {
            let mut kept = 0;
            for (i, n) in nodes.iter().enumerate() {
                if let Some(&j) = prev.index.get(&n.ip) {
                    layout.place(i, prev.layout.positions()[j]);
                    kept += 1;
                }
            }
            if kept * 2 > nodes.len() && prev.groups == groups {
                layout.set_alpha(0.3);
                view = prev.view;
                auto_fit = prev.auto_fit;
            }
            (width, height) = (prev.width, prev.height);
        }
        let mut order: Vec<usize> = (0..edges.len()).collect();
        order.sort_by(|&x, &y| {
            (edges[x].state, edges[x].width.to_bits())
                .cmp(&(edges[y].state, edges[y].width.to_bits()))
        });
        Scene {
            marks: vec![Mark::None; nodes.len()],
            nodes,
            edges,
            groups,
            layout,
            auto_fit,
            index,
            order,
            view,
            width,
            height,
        }
    }

    /// The node of `ip`, if it is on the map.
    pub fn index_of(&self, ip: &IpAddr) -> Option<usize> {
        self.index.get(ip).copied()
    }

    /// Sets the canvas size in CSS pixels.
    pub fn resize(&mut self, width: f32, height: f32) {
        self.width = width.max(1.0);
        self.height = height.max(1.0);
    }

    /// Zooms and pans so every node fits the canvas.
    pub fn fit(&mut self) {
        let Some((lo, hi)) = self.layout.bounds() else {
            return;
        };
        let margin = 30.0;
        let w = (hi.x - lo.x).max(1.0) + 2.0 * margin;
        let h = (hi.y - lo.y).max(1.0) + 2.0 * margin;
        let scale = (self.width / w).min(self.height / h).clamp(0.02, 2.0);
        self.view = View {
            scale,
            tx: self.width / 2.0 - (lo.x + hi.x) / 2.0 * scale,
            ty: self.height / 2.0 - (lo.y + hi.y) / 2.0 * scale,
        };
    }

    /// Puts node `i` in the middle of the canvas.
    pub fn centre_on(&mut self, i: usize) {
        if let Some(p) = self.layout.positions().get(i) {
            self.view.tx = self.width / 2.0 - p.x * self.view.scale;
            self.view.ty = self.height / 2.0 - p.y * self.view.scale;
            self.auto_fit = false;
        }
    }

    /// The map point under screen point `(x, y)`.
    pub fn to_map(&self, x: f32, y: f32) -> Point {
        Point {
            x: (x - self.view.tx) / self.view.scale,
            y: (y - self.view.ty) / self.view.scale,
        }
    }

    /// The screen point of map point `p`.
    pub fn to_screen(&self, p: Point) -> (f32, f32) {
        (
            p.x * self.view.scale + self.view.tx,
            p.y * self.view.scale + self.view.ty,
        )
    }

    /// The node under screen point `(x, y)`, with a few pixels of slack.
    pub fn hit(&self, x: f32, y: f32) -> Option<usize> {
        let at = self.to_map(x, y);
        let i = self.layout.node_at(at, 14.0 + 6.0 / self.view.scale)?;
        let p = self.layout.positions()[i];
        let d = ((p.x - at.x).powi(2) + (p.y - at.y).powi(2)).sqrt();
        (d <= self.nodes[i].radius + 4.0 / self.view.scale).then_some(i)
    }

    /// Zooms by `factor` keeping screen point `(x, y)` still.
    pub fn zoom_at(&mut self, x: f32, y: f32, factor: f32) {
        let at = self.to_map(x, y);
        self.view.scale = (self.view.scale * factor).clamp(0.02, 20.0);
        self.view.tx = x - at.x * self.view.scale;
        self.view.ty = y - at.y * self.view.scale;
        self.auto_fit = false;
    }

    /// Moves the view by `(dx, dy)` screen pixels.
    pub fn pan(&mut self, dx: f32, dy: f32) {
        self.view.tx += dx;
        self.view.ty += dy;
        self.auto_fit = false;
    }

    /// Marks `selected` and clears every other mark.
    pub fn select(&mut self, selected: Option<usize>) {
        self.marks.iter_mut().for_each(|m| *m = Mark::None);
        if let Some(m) = selected.and_then(|i| self.marks.get_mut(i)) {
            *m = Mark::Selected;
        }
    }

    /// Marks the assets in `ips` with `mark` (the selected one keeps its own).
    pub fn mark(&mut self, ips: impl IntoIterator<Item = IpAddr>, mark: Mark) {
        for ip in ips {
            if let Some(&i) = self.index.get(&ip) {
                if self.marks[i] != Mark::Selected {
                    self.marks[i] = mark;
                }
            }
        }
    }

    fn highlighting(&self) -> bool {
        self.marks.iter().any(|m| *m != Mark::None)
    }

    fn lit(&self, e: &Edge) -> bool {
        self.marks[e.a] != Mark::None && self.marks[e.b] != Mark::None
    }

    /// Draws the scene; `dpr` is the device pixel ratio, `dark` picks the text colour.
    pub fn draw(&self, ctx: &CanvasRenderingContext2d, dpr: f64, dark: bool) {
        let v = self.view;
        let _ = ctx.set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0);
        ctx.clear_rect(0.0, 0.0, self.width as f64, self.height as f64);
        let s = f64::from(v.scale);
        let _ = ctx.set_transform(
            dpr * s,
            0.0,
            0.0,
            dpr * s,
            dpr * f64::from(v.tx),
            dpr * f64::from(v.ty),
        );
        let pos = self.layout.positions();
        let highlighting = self.highlighting();
        let arrows = self.edges.len() <= 2_000 && v.scale >= 0.5;
        for lit_pass in [false, true] {
            if lit_pass && !highlighting {
                break;
            }
            ctx.set_global_alpha(if highlighting && !lit_pass { 0.15 } else { 0.8 });
            let mut current: Option<(EdgeState, f32)> = None;
            for &k in &self.order {
                let e = &self.edges[k];
                if highlighting && self.lit(e) != lit_pass {
                    continue;
                }
                if current != Some((e.state, e.width)) {
                    if current.is_some() {
                        ctx.stroke();
                    }
                    current = Some((e.state, e.width));
                    ctx.set_stroke_style_str(e.state.colour());
                    ctx.set_line_width(f64::from(e.width) / s);
                    let dash = js_sys::Array::new();
                    for d in e.state.dash() {
                        dash.push(&(d / s).into());
                    }
                    let _ = ctx.set_line_dash(&dash);
                    ctx.begin_path();
                }
                let (p, q) = (pos[e.a], pos[e.b]);
                ctx.move_to(f64::from(p.x), f64::from(p.y));
                ctx.line_to(f64::from(q.x), f64::from(q.y));
            }
            if current.is_some() {
                ctx.stroke();
            }
            if arrows {
                for state in [EdgeState::Active, EdgeState::Idle, EdgeState::Gone] {
                    ctx.set_fill_style_str(state.colour());
                    ctx.begin_path();
                    for e in self.edges.iter().filter(|e| e.state == state) {
                        if highlighting && self.lit(e) != lit_pass {
                            continue;
                        }
                        self.arrow(ctx, e, s);
                    }
                    ctx.fill();
                }
            }
        }
        let _ = ctx.set_line_dash(&js_sys::Array::new());
        self.draw_nodes(ctx, s, highlighting);
        self.draw_labels(ctx, dpr, dark);
    }

    /// An arrowhead at the server end of `e`.
    fn arrow(&self, ctx: &CanvasRenderingContext2d, e: &Edge, s: f64) {
        let pos = self.layout.positions();
        let (p, q) = (pos[e.a], pos[e.b]);
        let (dx, dy) = (f64::from(q.x - p.x), f64::from(q.y - p.y));
        let len = (dx * dx + dy * dy).sqrt();
        if len < 1e-3 {
            return;
        }
        let (ux, uy) = (dx / len, dy / len);
        let r = f64::from(self.nodes[e.b].radius);
        let size = (6.0 + f64::from(e.width)) / s;
        let (tx, ty) = (f64::from(q.x) - ux * r, f64::from(q.y) - uy * r);
        ctx.move_to(tx, ty);
        ctx.line_to(
            tx - ux * size - uy * size * 0.5,
            ty - uy * size + ux * size * 0.5,
        );
        ctx.line_to(
            tx - ux * size + uy * size * 0.5,
            ty - uy * size - ux * size * 0.5,
        );
        ctx.close_path();
    }

    fn visible(&self, p: Point, r: f32) -> bool {
        let (x, y) = self.to_screen(p);
        let r = r * self.view.scale;
        x + r >= 0.0 && y + r >= 0.0 && x - r <= self.width && y - r <= self.height
    }

    fn draw_nodes(&self, ctx: &CanvasRenderingContext2d, s: f64, highlighting: bool) {
        let pos = self.layout.positions();
        for (i, n) in self.nodes.iter().enumerate() {
            let p = pos[i];
            if !self.visible(p, n.radius) {
                continue;
            }
            let mark = self.marks[i];
            ctx.set_global_alpha(if highlighting && mark == Mark::None {
                0.25
            } else if n.gone {
                0.5
            } else {
                1.0
            });
            ctx.begin_path();
            let _ = ctx.arc(
                f64::from(p.x),
                f64::from(p.y),
                f64::from(n.radius),
                0.0,
                std::f64::consts::TAU,
            );
            ctx.set_fill_style_str(PALETTE[n.group as usize % PALETTE.len()]);
            ctx.fill();
            if let Some(ring) = mark.colour() {
                ctx.set_stroke_style_str(ring);
                ctx.set_line_width(3.0 / s);
                ctx.stroke();
            }
            let on_screen = f64::from(n.radius) * s;
            if !n.icon.is_empty() && on_screen >= 9.0 {
                ctx.set_fill_style_str("#ffffff");
                ctx.set_font(&format!(
                    "bold {:.1}px system-ui",
                    f64::from(n.radius) * 0.8
                ));
                ctx.set_text_align("center");
                ctx.set_text_baseline("middle");
                let _ = ctx.fill_text(n.icon, f64::from(p.x), f64::from(p.y));
            }
        }
        ctx.set_global_alpha(1.0);
    }

    /// Labels in screen pixels: every node's when zoomed in on a small map, else only the
    /// highlighted ones and the busiest few.
    fn draw_labels(&self, ctx: &CanvasRenderingContext2d, dpr: f64, dark: bool) {
        let _ = ctx.set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0);
        ctx.set_font("11px system-ui");
        ctx.set_text_align("center");
        ctx.set_text_baseline("top");
        ctx.set_fill_style_str(if dark { "#e6e6e6" } else { "#1b1d21" });
        let all =
            self.nodes.len() <= 300 && self.view.scale >= 0.7 || self.view.scale * 40.0 >= 90.0;
        let pos = self.layout.positions();
        for (i, n) in self.nodes.iter().enumerate() {
            let busiest = i < 15 && self.view.scale >= 0.4;
            if !(all || busiest || self.marks[i] != Mark::None) || !self.visible(pos[i], n.radius) {
                continue;
            }
            let (x, y) = self.to_screen(pos[i]);
            let below = y + n.radius * self.view.scale + 2.0;
            let _ = ctx.fill_text(&n.label, f64::from(x), f64::from(below));
        }
    }

    /// Where each node is on the canvas (CSS pixels from its top left), as JSON keyed by
    /// address: for scripts and automated tests that click nodes.
    pub fn screen_json(&self) -> String {
        let mut out = String::from("{");
        for (i, n) in self.nodes.iter().enumerate() {
            let (x, y) = self.to_screen(self.layout.positions()[i]);
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{}\":[{:.1},{:.1}]", n.label, x, y);
        }
        out.push('}');
        out
    }

    /// The whole map as a standalone SVG document.
    pub fn svg(&self) -> String {
        let (lo, hi) = self.layout.bounds().unwrap_or_default();
        let m = 40.0;
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"{:.1} {:.1} {:.1} {:.1}\" \
             font-family=\"system-ui, sans-serif\" font-size=\"9\">\n<defs>",
            lo.x - m,
            lo.y - m,
            hi.x - lo.x + 2.0 * m,
            hi.y - lo.y + 2.0 * m
        );
        for state in [EdgeState::Active, EdgeState::Idle, EdgeState::Gone] {
            let _ = write!(
                out,
                "<marker id=\"arrow-{:?}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
                 markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" \
                 fill=\"{}\"/></marker>",
                state,
                state.colour()
            );
        }
        out.push_str("</defs>\n<g class=\"edges\" fill=\"none\">\n");
        let pos = self.layout.positions();
        for e in &self.edges {
            let (p, q) = (pos[e.a], pos[e.b]);
            let (dx, dy) = (q.x - p.x, q.y - p.y);
            let len = (dx * dx + dy * dy).sqrt().max(1e-3);
            let r = self.nodes[e.b].radius;
            let dash: Vec<String> = e.state.dash().iter().map(|d| d.to_string()).collect();
            let _ = writeln!(
                out,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" \
                 stroke-width=\"{}\" stroke-dasharray=\"{}\" marker-end=\"url(#arrow-{:?})\"/>",
                p.x,
                p.y,
                q.x - dx / len * r,
                q.y - dy / len * r,
                e.state.colour(),
                e.width,
                dash.join(" "),
                e.state
            );
        }
        out.push_str("</g>\n<g class=\"nodes\">\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let p = pos[i];
            let _ = writeln!(
                out,
                "<g><title>{}</title><circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{:.1}\" fill=\"{}\" \
                 opacity=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
                n.label,
                p.x,
                p.y,
                n.radius,
                PALETTE[n.group as usize % PALETTE.len()],
                if n.gone { 0.5 } else { 1.0 },
                p.x,
                p.y + n.radius + 10.0,
                n.label
            );
        }
        out.push_str("</g>\n</svg>\n");
        out
    }
}
