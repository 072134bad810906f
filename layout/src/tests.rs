//! The layout's behaviour: it settles, it separates, it keeps edges short, pins hold, groups
//! gather, and nothing turns into NaN.

use super::*;

fn run(layout: &mut Layout) -> usize {
    let mut steps = 0;
    while !layout.settled() {
        layout.step();
        steps += 1;
        assert!(steps < 1000, "never settled");
    }
    steps
}

fn dist(a: Point, b: Point) -> f32 {
    ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt()
}

/// A ring of `n` nodes plus `extra` chords: a graph with structure and no isolated nodes.
fn ring(n: u32, extra: u32) -> Vec<(u32, u32)> {
    let mut e: Vec<(u32, u32)> = (0..n).map(|i| (i, (i + 1) % n)).collect();
    e.extend((0..extra).map(|k| ((k * 7) % n, (k * 13 + 5) % n)));
    e
}

#[test]
fn settles_in_about_three_hundred_steps_and_stays_finite() {
    let mut layout = Layout::new(200, &ring(200, 100), &[]);
    let steps = run(&mut layout);
    assert!((250..350).contains(&steps), "{steps} steps");
    assert!(layout
        .positions()
        .iter()
        .all(|p| p.x.is_finite() && p.y.is_finite()));
    let before = layout.positions().to_vec();
    layout.step();
    assert_eq!(
        layout.positions(),
        &before[..],
        "a settled layout does not move"
    );
}

#[test]
fn connected_nodes_end_closer_than_unconnected_ones() {
    let edges = ring(300, 0);
    let mut layout = Layout::new(300, &edges, &[]);
    run(&mut layout);
    let p = layout.positions();
    let linked: f32 = edges
        .iter()
        .map(|&(a, b)| dist(p[a as usize], p[b as usize]))
        .sum::<f32>()
        / edges.len() as f32;
    let far: f32 = (0..300)
        .map(|i| dist(p[i], p[(i + 150) % 300]))
        .sum::<f32>()
        / 300.0;
    assert!(linked < 80.0, "edges are {linked} long on average");
    assert!(
        far > 3.0 * linked,
        "opposite ring nodes {far} vs edges {linked}"
    );
}

#[test]
fn coincident_and_isolated_nodes_are_pushed_apart() {
    // Every node starts on the spiral; force two to the same point by pinning then releasing.
    let mut layout = Layout::new(50, &[], &[]);
    layout.pin(1, Some(Point { x: 0.0, y: 0.0 }));
    layout.pin(2, Some(Point { x: 0.0, y: 0.0 }));
    layout.pin(1, None);
    layout.pin(2, None);
    run(&mut layout);
    let p = layout.positions();
    let mut closest = f32::MAX;
    for i in 0..50 {
        for j in i + 1..50 {
            closest = closest.min(dist(p[i], p[j]));
        }
    }
    assert!(closest > 5.0, "two nodes are {closest} apart");
}

#[test]
fn a_pinned_node_stays_where_it_is_held() {
    let mut layout = Layout::new(100, &ring(100, 20), &[]);
    let at = Point {
        x: 500.0,
        y: -300.0,
    };
    layout.pin(7, Some(at));
    run(&mut layout);
    assert_eq!(layout.positions()[7], at);
    // Its neighbours followed it part of the way.
    let p = layout.positions();
    assert!(dist(p[8], at) < dist(p[50], at));
    layout.reheat(0.3);
    assert!(!layout.settled());
}

#[test]
fn groups_gather_around_their_own_anchor() {
    let n = 120;
    let groups: Vec<u32> = (0..n).map(|i| i % 3).collect();
    let mut layout = Layout::new(n as usize, &[], &groups);
    run(&mut layout);
    let p = layout.positions();
    let centre = |g: u32| {
        let members: Vec<Point> = (0..n)
            .filter(|i| i % 3 == g)
            .map(|i| p[i as usize])
            .collect();
        Point {
            x: members.iter().map(|q| q.x).sum::<f32>() / members.len() as f32,
            y: members.iter().map(|q| q.y).sum::<f32>() / members.len() as f32,
        }
    };
    let centres: Vec<Point> = (0..3).map(centre).collect();
    for i in 0..n {
        let own = dist(p[i as usize], centres[(i % 3) as usize]);
        let other = dist(p[i as usize], centres[((i + 1) % 3) as usize]);
        assert!(own < other, "node {i} sits nearer another group");
    }
}

#[test]
fn bad_edges_are_dropped_and_hit_testing_finds_the_nearest_node() {
    let layout = Layout::new(3, &[(0, 1), (1, 1), (2, 9)], &[0, 0]);
    assert_eq!(layout.edges(), &[(0, 1)]);
    let p = layout.positions()[2];
    assert_eq!(
        layout.node_at(
            Point {
                x: p.x + 1.0,
                y: p.y
            },
            5.0
        ),
        Some(2)
    );
    assert_eq!(layout.node_at(Point { x: 1e6, y: 1e6 }, 5.0), None);
    let empty = Layout::new(0, &[], &[]);
    assert!(empty.bounds().is_none());
    assert!(empty.is_empty());
}

#[test]
fn barnes_hut_repulsion_is_close_to_the_exact_sum() {
    let layout = Layout::new(500, &[], &[]);
    let pos = layout.positions().to_vec();
    let mut tree = quadtree::QuadTree::default();
    tree.build(&pos);
    for i in [0usize, 17, 250, 499] {
        let approx = tree.repulsion(&pos, i, 0.9);
        let exact = pos.iter().enumerate().filter(|&(j, _)| j != i).fold(
            Point::default(),
            |mut f, (_, q)| {
                let (dx, dy) = (q.x - pos[i].x, q.y - pos[i].y);
                let l = (dx * dx + dy * dy).max(1.0);
                f.x += dx / l;
                f.y += dy / l;
                f
            },
        );
        // Near the middle the pushes cancel out, so the error is judged against their sizes.
        let pushes: f32 = pos
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, q)| 1.0 / dist(*q, pos[i]).max(1.0))
            .sum();
        let err = dist(approx, exact);
        assert!(err <= 0.02 * pushes, "node {i}: {approx:?} vs {exact:?}");
        assert!(
            err <= 0.2 * dist(exact, Point::default()),
            "node {i}: {approx:?} vs {exact:?}"
        );
    }
}
