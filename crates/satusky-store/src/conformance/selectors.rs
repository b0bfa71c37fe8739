//! Conformance of selector queries over machine labels: the store answers
//! exactly what `Selector::matches` says of the machine's labels (user and
//! system, system winning), with pagination and the public/own scope.

use std::collections::BTreeMap;
use std::sync::Arc;

use satusky_core::fleet::labels::all_labels;
use satusky_core::pagination::PageRequest;
use satusky_core::selector::Selector;
use satusky_core::store::Store;
use satusky_types::machines::Visibility;

use super::machines::machine;
use super::{all, given_org, given_user, pages};

/// A machine's name, user labels and system labels.
type Labelled = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, &'static str)>,
);

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub async fn selector_queries_match_exactly_what_the_selector_matches(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let other = given_org(&*store, "other", &owner).await;
    let fleet: Vec<Labelled> = vec![
        (
            "a",
            vec![("pool", "gpu")],
            vec![("arch", "amd64"), ("zone", "z-a")],
        ),
        (
            "b",
            vec![("pool", "gpu"), ("maintenance", "")],
            vec![("arch", "arm64"), ("zone", "z-b")],
        ),
        (
            "c",
            vec![("pool", "cpu")],
            vec![("arch", "amd64"), ("zone", "z-c")],
        ),
        ("d", vec![], vec![("arch", "amd64"), ("zone", "z-a")]),
        // A user label shadowed by a system label of the same key.
        (
            "e",
            vec![("zone", "z-b"), ("tier", "it's \"quoted\"")],
            vec![("arch", "amd64"), ("zone", "z-a")],
        ),
        (
            "f",
            vec![("pool", "gpu"), ("kubernetes.io/arch", "x")],
            vec![("kubernetes.io/arch", "amd64")],
        ),
    ];
    let mut records = Vec::new();
    for (name, user, system) in &fleet {
        let mut m = machine(&o.id, name, &format!("u-{name}"));
        m.labels = labels(user);
        m.system_labels = labels(system);
        store.create_machine(&m).await.expect("create");
        records.push(m);
    }
    // Another organization's machines: one public (seen with include_public), one not.
    let mut p = machine(&other.id, "pub", "u-pub");
    p.labels = labels(&[("pool", "gpu")]);
    p.visibility = Visibility::Public;
    store.create_machine(&p).await.expect("create");
    let mut q = machine(&other.id, "priv", "u-priv");
    q.labels = labels(&[("pool", "gpu")]);
    store.create_machine(&q).await.expect("create");

    for expr in [
        "pool=gpu",
        "pool==gpu",
        "pool!=gpu",
        "pool in (gpu,cpu)",
        "pool notin (gpu)",
        "pool",
        "!pool",
        "maintenance",
        "!maintenance",
        "maintenance=",
        "pool=gpu,zone in (z-a,z-b),!maintenance",
        "zone=z-b",
        "zone=z-a",
        "arch=amd64,zone notin (z-c)",
        "kubernetes.io/arch=amd64",
        "kubernetes.io/arch=x",
        "tier",
        "nosuch",
        "!nosuch",
        "nosuch!=x",
    ] {
        let selector = Selector::parse(expr).expect("valid selector");
        let want: Vec<String> = records
            .iter()
            .filter(|m| selector.matches(&all_labels(&m.labels, &m.system_labels)))
            .map(|m| m.name.clone())
            .collect();
        let got: Vec<String> = store
            .list_machines_selected(&o.id, false, &selector, &all())
            .await
            .expect("query")
            .into_iter()
            .map(|m| m.name)
            .collect();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(got_sorted, want_sorted, "{expr}");
    }

    // Scope: public machines of others only with include_public; pages in id order.
    let selector = Selector::parse("pool=gpu").expect("valid");
    let with_public: Vec<String> = store
        .list_machines_selected(&o.id, true, &selector, &all())
        .await
        .expect("query")
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(with_public.contains(&"pub".to_owned()));
    assert!(!with_public.contains(&"priv".to_owned()));
    let paged: Vec<String> = pages(
        1,
        |page: PageRequest| {
            let store = Arc::clone(&store);
            let org = o.id.clone();
            let selector = selector.clone();
            async move {
                store
                    .list_machines_selected(&org, true, &selector, &page)
                    .await
            }
        },
        |m| m.id.clone(),
    )
    .await
    .into_iter()
    .flatten()
    .map(|m| m.name)
    .collect();
    let mut ids: Vec<_> = paged.clone();
    ids.sort();
    let mut expected = with_public.clone();
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(paged.len(), with_public.len());
}
