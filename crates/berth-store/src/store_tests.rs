//! The store against a real filesystem in a temporary directory.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;

use crate::{Digest, Error, Store};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

fn count_entries(path: &std::path::Path) -> usize {
    std::fs::read_dir(path).map(|entries| entries.count()).unwrap_or(0)
}

#[test]
fn put_then_read_returns_the_bytes() {
    let (_dir, store) = store();
    let digest = Digest::sha256_of(b"{\"config\":1}");
    assert!(!store.has_blob(&digest));
    store.put_blob(&digest, b"{\"config\":1}").unwrap();
    assert!(store.has_blob(&digest));
    assert!(store.blob_path(&digest).ends_with(format!("blobs/sha256/{}", digest.hex())));
    assert_eq!(store.read_blob(&digest, 1024).unwrap(), b"{\"config\":1}");
    // Putting it again is a no-op.
    store.put_blob(&digest, b"{\"config\":1}").unwrap();
    match store.read_blob(&digest, 4) {
        Err(Error::TooLarge { size: 12, max: 4, .. }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn put_replaces_a_damaged_copy() {
    let (_dir, store) = store();
    let digest = Digest::sha256_of(b"{\"config\":1}");
    store.put_blob(&digest, b"{\"config\":1}").unwrap();
    std::fs::write(store.blob_path(&digest), b"{\"config\":2}").unwrap();
    assert!(matches!(store.read_blob(&digest, 1024), Err(Error::DigestMismatch { .. })));
    store.put_blob(&digest, b"{\"config\":1}").unwrap();
    assert_eq!(store.read_blob(&digest, 1024).unwrap(), b"{\"config\":1}");
    assert_eq!(count_entries(&store.root().join("ingest")), 0);
}

#[test]
fn mismatching_put_stores_nothing() {
    let (_dir, store) = store();
    let digest = Digest::sha256_of(b"expected");
    let error = store.put_blob(&digest, b"something else").unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&digest.to_string()), "{message}");
    assert!(message.contains(&Digest::sha256_of(b"something else").to_string()), "{message}");
    assert!(!store.has_blob(&digest));
    assert_eq!(count_entries(&store.root().join("ingest")), 0);
}

#[test]
fn mismatching_ingest_deletes_the_partial() {
    let (_dir, store) = store();
    let digest = Digest::sha256_of(b"good bytes");
    let mut ingest = store.ingest(&digest, 10).unwrap();
    ingest.write_all(b"evil bytes").unwrap();
    match ingest.commit() {
        Err(Error::DigestMismatch { expected, actual, .. }) => {
            assert_eq!(expected, digest);
            assert_eq!(actual, Digest::sha256_of(b"evil bytes"));
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert!(!store.has_blob(&digest));
    assert_eq!(count_entries(&store.root().join("ingest")), 0);
}

#[test]
fn ingest_resumes_a_partial_download() {
    let (_dir, store) = store();
    let content = b"0123456789abcdefghij";
    let digest = Digest::sha256_of(content);
    {
        let mut ingest = store.ingest(&digest, 20).unwrap();
        assert_eq!(ingest.offset(), 0);
        ingest.write_all(&content[..7]).unwrap();
        // Dropped without commit: a crash or a network error.
    }
    let mut ingest = store.ingest(&digest, 20).unwrap();
    assert_eq!(ingest.offset(), 7);
    assert_eq!(ingest.hasher().bytes(), 7);
    ingest.write_all(&content[7..]).unwrap();
    ingest.commit().unwrap();
    assert_eq!(store.read_blob(&digest, 100).unwrap(), content);
}

#[test]
fn a_discarded_ingest_leaves_nothing_to_resume() {
    let (_dir, store) = store();
    let content = b"0123456789abcdefghij";
    let digest = Digest::sha256_of(content);
    let mut ingest = store.ingest(&digest, 20).unwrap();
    ingest.write_all(&content[..7]).unwrap();
    ingest.flush().unwrap();
    assert_eq!(store.partial_len(&digest), 7);
    ingest.discard();
    assert_eq!(store.partial_len(&digest), 0);
    assert_eq!(store.ingest(&digest, 20).unwrap().offset(), 0);
    assert!(!store.has_blob(&digest));
}

#[test]
fn ingest_restarts_a_partial_longer_than_the_blob() {
    let (_dir, store) = store();
    let digest = Digest::sha256_of(b"short");
    std::fs::write(store.root().join("ingest").join(format!("{}.partial", digest.hex())), b"far too long")
        .unwrap();
    let mut ingest = store.ingest(&digest, 5).unwrap();
    assert_eq!(ingest.offset(), 0);
    ingest.write_all(b"short").unwrap();
    ingest.commit().unwrap();
    assert!(store.has_blob(&digest));
}

#[test]
fn ingest_refuses_bytes_past_the_size_and_short_commits() {
    let (_dir, store) = store();
    let digest = Digest::sha256_of(b"four");
    let mut ingest = store.ingest(&digest, 4).unwrap();
    let error = ingest.write(b"fourplus").unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(ingest.offset(), 0, "nothing of a refused write is kept");
    ingest.write_all(b"fou").unwrap();
    assert!(matches!(ingest.commit(), Err(Error::SizeMismatch { expected: 4, actual: 3, .. })));
    assert!(!store.has_blob(&digest));
}

#[test]
fn second_writer_of_the_same_blob_is_busy() {
    let (_dir, store) = store();
    let digest = Digest::sha256_of(b"x");
    let _first = store.ingest(&digest, 1).unwrap();
    assert!(matches!(store.ingest(&digest, 1), Err(Error::Busy { .. })));
}

#[test]
fn refs_round_trip() {
    let (_dir, store) = store();
    let one = Digest::sha256_of(b"one");
    let two = Digest::sha256_of(b"two");
    assert_eq!(store.get_ref("docker.io/library/nginx:latest").unwrap(), None);
    store.set_ref("docker.io/library/nginx:latest", &one).unwrap();
    store.set_ref("127.0.0.1:5000/app:v1", &two).unwrap();
    store.set_ref("docker.io/library/nginx:latest", &two).unwrap();
    assert_eq!(store.get_ref("docker.io/library/nginx:latest").unwrap(), Some(two.clone()));
    let reopened = Store::open(store.root()).unwrap();
    assert_eq!(
        reopened.refs().unwrap(),
        vec![
            ("127.0.0.1:5000/app:v1".to_owned(), two.clone()),
            ("docker.io/library/nginx:latest".to_owned(), two)
        ]
    );
    assert!(reopened.remove_ref("127.0.0.1:5000/app:v1").unwrap());
    assert!(!reopened.remove_ref("127.0.0.1:5000/app:v1").unwrap());
    assert_eq!(reopened.refs().unwrap().len(), 1);
}

#[test]
fn corrupt_refs_file_is_an_error_naming_it() {
    let (_dir, store) = store();
    std::fs::write(store.root().join("refs.json"), b"{\"a\": \"sha256:nope\"}").unwrap();
    let message = store.get_ref("a").unwrap_err().to_string();
    assert!(message.contains("refs.json"), "{message}");
}

#[test]
fn concurrent_set_ref_loses_no_update() {
    let (_dir, store) = store();
    let root = store.root().to_path_buf();
    let shared = Arc::new(store);
    let mut threads = Vec::new();
    for thread in 0..8 {
        let shared = Arc::clone(&shared);
        // Half share one Store, half open their own (like separate processes would).
        let own = (thread % 2 == 1).then(|| Store::open(&root).unwrap());
        threads.push(std::thread::spawn(move || {
            let store = own.as_ref().unwrap_or(&shared);
            for index in 0..10 {
                let name = format!("example.test/t{thread}:{index}");
                store.set_ref(&name, &Digest::sha256_of(name.as_bytes())).unwrap();
            }
        }));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    let refs = shared.refs().unwrap();
    assert_eq!(refs.len(), 80);
    for (name, digest) in refs {
        assert_eq!(digest, Digest::sha256_of(name.as_bytes()));
    }
}

#[test]
fn lock_is_reentrant_on_one_thread() {
    let (_dir, store) = store();
    let _outer = store.lock().unwrap();
    // Would deadlock if set_ref took a second flock on the same thread.
    store.set_ref("a", &Digest::sha256_of(b"a")).unwrap();
    assert!(store.get_ref("a").unwrap().is_some());
}

#[test]
fn commit_layer_renames_and_tolerates_an_existing_layer() {
    let (_dir, store) = store();
    let chain_id = Digest::sha256_of(b"layer");
    let staging = store.stage_layer().unwrap();
    let staging_path = staging.path().to_path_buf();
    assert!(staging_path.starts_with(store.root().join("tmp")));
    std::fs::write(staging.path().join("hello"), b"hi").unwrap();
    store.commit_layer(staging, &chain_id).unwrap();
    assert!(store.has_layer(&chain_id));
    assert_eq!(std::fs::read(store.layer_path(&chain_id).join("hello")).unwrap(), b"hi");
    assert!(!staging_path.exists());

    let duplicate = store.stage_layer().unwrap();
    let duplicate_path = duplicate.path().to_path_buf();
    std::fs::write(duplicate.path().join("other"), b"x").unwrap();
    store.commit_layer(duplicate, &chain_id).unwrap();
    assert!(!duplicate_path.exists(), "the duplicate staging dir is dropped");
    assert!(!store.layer_path(&chain_id).join("other").exists(), "the committed layer is untouched");
}

#[test]
fn dropped_staging_is_removed_and_crash_leftovers_are_cleaned_on_open() {
    let (_dir, store) = store();
    let staging = store.stage_layer().unwrap();
    let path = staging.path().to_path_buf();
    std::fs::create_dir(path.join("sub")).unwrap();
    drop(staging);
    assert!(!path.exists());

    let live = store.stage_layer().unwrap();
    let crashed = store.root().join("tmp").join("layer-crashed");
    std::fs::create_dir_all(crashed.join("deep")).unwrap();
    let reopened = Store::open(store.root()).unwrap();
    assert!(!crashed.exists(), "unlocked staging dir removed on open");
    assert!(live.path().exists(), "a live staging dir is kept");
    drop(reopened);
}

#[test]
fn prune_keeps_what_is_kept_and_removes_the_rest() {
    let (_dir, store) = store();
    let kept_blob = Digest::sha256_of(b"kept");
    let dropped_blob = Digest::sha256_of(b"dropped!");
    store.put_blob(&kept_blob, b"kept").unwrap();
    store.put_blob(&dropped_blob, b"dropped!").unwrap();
    let kept_layer = Digest::sha256_of(b"kept layer");
    let dropped_layer = Digest::sha256_of(b"dropped layer");
    for (layer, content) in [(&kept_layer, &b"12"[..]), (&dropped_layer, &b"123"[..])] {
        let staging = store.stage_layer().unwrap();
        std::fs::create_dir(staging.path().join("ro")).unwrap();
        std::fs::write(staging.path().join("ro/file"), content).unwrap();
        store.commit_layer(staging, layer).unwrap();
    }
    // An abandoned partial, and one being written right now.
    let abandoned = Digest::sha256_of(b"abandoned");
    drop(store.ingest(&abandoned, 9).unwrap());
    let live = Digest::sha256_of(b"live");
    let mut live_ingest = store.ingest(&live, 4).unwrap();
    live_ingest.write_all(b"li").unwrap();

    let report =
        store.prune(&HashSet::from([kept_blob.clone()]), &HashSet::from([kept_layer.clone()])).unwrap();
    assert_eq!(report.blobs_removed, 1);
    assert_eq!(report.layers_removed, 1);
    assert_eq!(report.stale_removed, 1);
    assert_eq!(report.bytes_freed, 8 + 3);
    assert!(store.has_blob(&kept_blob) && !store.has_blob(&dropped_blob));
    assert!(store.has_layer(&kept_layer) && !store.has_layer(&dropped_layer));
    live_ingest.write_all(b"ve").unwrap();
    live_ingest.commit().unwrap();
    assert!(store.has_blob(&live));
}
