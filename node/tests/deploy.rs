//! The deployment files under `deploy/` against the node's own config loader: the container
//! config, each compose service's environment, the Kubernetes ConfigMap with each pod's
//! environment, the systemd unit's environment; and the ports and probe paths they name agree
//! with the configs and the API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Yaml};
use figment::Figment;
use node::config::Config;
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn yaml(text: &str) -> Value {
    Figment::from(Yaml::string(text))
        .extract::<Value>()
        .unwrap_or_else(|e| panic!("YAML: {e}\n{text}"))
}

fn load(file: &Path, env: &BTreeMap<String, String>) -> Config {
    Config::load(Some(file), env.clone())
        .unwrap_or_else(|e| panic!("{} with {env:?}: {e}", file.display()))
}

#[test]
fn the_container_image_config_and_dockerfile_agree() {
    let container = load(&deploy().join("container.toml"), &BTreeMap::new());
    assert_eq!(container.data_dir, PathBuf::from("/var/lib/flowlens"));
    assert_eq!(container.api.listen.to_string(), "0.0.0.0:8080");
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains("COPY deploy/container.toml /etc/flowlens/flowlens.toml"));
    assert!(dockerfile.contains("VOLUME /var/lib/flowlens"));
    let expose = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    assert!(expose.contains(&format!("{}/tcp", container.api.listen.port())));
    for udp in &container.collector.listen {
        assert!(expose.contains(&format!("{}/udp", udp.port())), "{expose}");
    }
}

#[test]
fn every_compose_node_loads_with_its_environment() {
    let text = std::fs::read_to_string(deploy().join("docker-compose.yml")).expect("compose");
    let compose = yaml(&text);
    let services = compose["services"].as_object().expect("services");
    let mut ids = Vec::new();
    for (name, service) in services.iter().filter(|(n, _)| n.starts_with("node")) {
        let env: BTreeMap<String, String> = service["environment"]
            .as_object()
            .expect("environment")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let c = load(&deploy().join("container.toml"), &env);
        assert!(c.cluster.enabled(), "{name}");
        assert_eq!(c.cluster.name, "compose");
        assert_eq!(c.cluster.nats, "nats://nats:4222");
        assert_eq!(
            c.api.advertised(),
            format!("{name}:8080"),
            "members reach {name} by name"
        );
        assert!(services.contains_key("nats"));
        ids.push(c.node_id);
    }
    assert_eq!(ids, [1, 2, 3]);
    let join = services["join"]["command"][0]
        .as_str()
        .expect("join command");
    for step in ["init --node 1", "add-node 2", "add-node 3"] {
        assert!(
            join.contains(&format!("--cluster compose {step}")),
            "{join}"
        );
    }
}

#[test]
fn the_kubernetes_manifests_load_for_every_pod_and_name_real_probes() {
    let k8s = deploy().join("k8s");
    let read = |name: &str| std::fs::read_to_string(k8s.join(name)).expect(name);
    let map = yaml(&read("configmap.yaml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flowlens.toml");
    std::fs::write(
        &file,
        map["data"]["flowlens.toml"]
            .as_str()
            .expect("flowlens.toml"),
    )
    .expect("written");
    let set = yaml(&read("statefulset.yaml"));
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    let mut env: BTreeMap<String, String> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let replicas = set["spec"]["replicas"].as_u64().expect("replicas");
    for ordinal in 0..replicas {
        // What the container's shell computes from the pod name.
        env.insert("FLOWLENS_NODE_ID".into(), (ordinal + 1).to_string());
        env.insert(
            "FLOWLENS_API__ADVERTISE".into(),
            format!("flowlens-{ordinal}.flowlens-headless:8080"),
        );
        let c = load(&file, &env);
        assert_eq!(c.node_id, ordinal + 1);
        assert!(c.cluster.enabled());
        assert_eq!(c.api.listen.port(), 8080);
        assert_eq!(
            c.api.advertised(),
            format!("flowlens-{ordinal}.flowlens-headless:8080")
        );
        let ports: Vec<u64> = container["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .filter_map(|p| p["containerPort"].as_u64())
            .collect();
        assert!(ports.contains(&8080));
        for udp in &c.collector.listen {
            assert!(ports.contains(&u64::from(udp.port())), "{ports:?}");
        }
    }
    assert!(container["args"][0]
        .as_str()
        .is_some_and(|a| a.contains("FLOWLENS_API__ADVERTISE=${HOSTNAME}.flowlens-headless:8080")));
    assert!(container["args"][0]
        .as_str()
        .is_some_and(|a| a.contains("${HOSTNAME##*-} + 1")
            && a.contains("--config /etc/flowlens/flowlens.toml")));
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"],
        "/api/v1/health/live"
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"],
        "/api/v1/health/ready"
    );
    assert_eq!(
        container["volumeMounts"][0]["mountPath"].as_str(),
        Some("/var/lib/flowlens")
    );
    // The NATS the config names is the Service nats.yaml defines.
    let nats = read("nats.yaml");
    let service = yaml(nats.split("\n---\n").next().expect("first document"));
    assert_eq!(service["kind"], "Service");
    assert_eq!(service["metadata"]["name"], "nats");
    assert_eq!(service["spec"]["ports"][0]["port"], 4222);
    for name in ["service.yaml", "service-flows.yaml"] {
        let svc = yaml(&read(name));
        assert_eq!(svc["spec"]["selector"]["app"], "flowlens", "{name}");
    }
}

#[test]
fn the_systemd_unit_runs_the_example_config_with_its_state_directory() {
    let unit = std::fs::read_to_string(deploy().join("systemd/flowlens.service")).expect("unit");
    assert!(unit
        .contains("ExecStart=/usr/local/bin/flowlens node --config /etc/flowlens/flowlens.toml"));
    let env: BTreeMap<String, String> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let c = load(&deploy().join("flowlens.toml"), &env);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/flowlens"));
    assert!(unit.contains("StateDirectory=flowlens"));
}
