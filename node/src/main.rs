//! The `flowlens` binary. The node, simulator and admin commands arrive with the single-node issue;
//! until then it states what this build can do.

fn main() {
    println!(
        "flowlens {}: decoders are in place; the node command arrives with the single-node issue",
        env!("CARGO_PKG_VERSION")
    );
}
