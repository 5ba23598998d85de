use super::*;
use futures_channel::oneshot;

/// Scopes that answer when the sender says: `Some(error)` or `None` (no error).
fn later() -> (oneshot::Sender<Option<Failure>>, PendingErrors) {
    let (answer, answered) = oneshot::channel();
    (
        answer,
        Box::pin(async move { answered.await.ok().flatten() }),
    )
}

fn rejected(operation: &'static str) -> Failure {
    Failure {
        work: Work::named(operation),
        error: Arc::new(wgpu::Error::Validation {
            source: Box::new(DriverError),
            description: "Validation Error: bad binding".into(),
        }),
    }
}

fn operation(result: Result<()>) -> Option<&'static str> {
    match result {
        Err(AlibiError::Gpu { operation, .. }) => Some(operation),
        Ok(()) => None,
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn late_errors_go_to_the_call_that_did_the_work() {
    let deferred = DeferredErrors::default();
    let (first_answer, first_scopes) = later();
    let (second_answer, second_scopes) = later();
    let (setup_answer, setup_scopes) = later();
    deferred.keep(setup_scopes);
    let first = {
        let call = deferred.begin_call();
        deferred.keep(first_scopes);
        call.record()
    };
    let second = {
        let call = deferred.begin_call();
        deferred.keep(second_scopes);
        call.record()
    };
    // Nothing known yet: a cache hit would serve both.
    assert!(first.failure_now().is_none());
    assert!(second.failure_now().is_none());
    first_answer
        .send(Some(rejected("the first generation")))
        .unwrap();
    second_answer.send(None).unwrap();
    setup_answer.send(None).unwrap();
    assert!(matches!(
        first.failure_now(),
        Some(AlibiError::Gpu {
            operation: "the first generation",
            ..
        })
    ));
    assert!(second.failure_now().is_none());
    // Every read of the failed call reports it, and only its reads.
    for _ in 0..2 {
        let failed = pollster::block_on(first.settle());
        assert_eq!(operation(failed), Some("the first generation"));
    }
    assert_eq!(operation(pollster::block_on(second.settle())), None);
    assert_eq!(
        operation(pollster::block_on(deferred.settle_untied())),
        None
    );
    // A view of no call's work (the caller's buffer, an empty view) has nothing to wait for.
    let none = CallErrors::default();
    assert!(none.failure_now().is_none());
    assert_eq!(operation(pollster::block_on(none.settle())), None);
}

#[test]
fn a_call_scope_ends_when_dropped_and_nested_calls_resume_the_outer() {
    let deferred = DeferredErrors::default();
    let (outer_answer, outer_scopes) = later();
    let (inner_answer, inner_scopes) = later();
    let (after_answer, after_scopes) = later();
    let outer = deferred.begin_call();
    let inner = deferred.begin_call();
    deferred.keep(inner_scopes);
    let inner_record = inner.record();
    drop(inner);
    deferred.keep(outer_scopes);
    let outer_record = outer.record();
    drop(outer);
    // Outside any call: the module's own work.
    deferred.keep(after_scopes);
    inner_answer.send(None).unwrap();
    outer_answer.send(Some(rejected("the outer call"))).unwrap();
    after_answer
        .send(Some(rejected("building the module")))
        .unwrap();
    assert_eq!(operation(pollster::block_on(inner_record.settle())), None);
    assert_eq!(
        operation(pollster::block_on(outer_record.settle())),
        Some("the outer call")
    );
    assert_eq!(
        operation(pollster::block_on(deferred.settle_untied())),
        Some("building the module")
    );
}

#[test]
fn two_reads_waiting_on_one_call_both_wake() {
    let record = CallErrors::new();
    let (answer, scopes) = later();
    record.push(scopes);
    let (a, b) = (record.clone(), record.clone());
    let readers = [
        std::thread::spawn(move || operation(pollster::block_on(a.settle()))),
        std::thread::spawn(move || operation(pollster::block_on(b.settle()))),
    ];
    std::thread::sleep(std::time::Duration::from_millis(20));
    answer.send(Some(rejected("the generation"))).unwrap();
    for reader in readers {
        assert_eq!(reader.join().unwrap(), Some("the generation"));
    }
}

#[derive(Debug, thiserror::Error)]
#[error("driver says no")]
struct DriverError;

#[test]
fn out_of_memory_is_typed_with_its_bytes_and_source() {
    let error = Work::allocating("the bias buffer", 1 << 30).error(wgpu::Error::OutOfMemory {
        source: Box::new(DriverError),
    });
    match &error {
        AlibiError::OutOfMemory {
            memory: Memory::Device,
            what: "the bias buffer",
            bytes,
            source: Some(_),
        } => assert_eq!(*bytes, Some(1 << 30)),
        other => panic!("{other:?}"),
    }
    let source = std::error::Error::source(&error).expect("a source");
    assert!(matches!(
        source.downcast_ref::<Arc<wgpu::Error>>().map(|e| &**e),
        Some(wgpu::Error::OutOfMemory { .. })
    ));
}

#[test]
fn out_of_memory_outside_an_allocation_names_no_byte_count() {
    let error = Work::named("the bias generation").error(wgpu::Error::OutOfMemory {
        source: Box::new(DriverError),
    });
    assert!(matches!(error, AlibiError::OutOfMemory { bytes: None, .. }));
    assert_eq!(
        error.to_string(),
        "out of device memory: could not allocate the bias generation; lower the cache \
         budget or request a smaller tensor"
    );
}

#[test]
fn validation_errors_keep_wgpus_error_as_the_source() {
    let error = Work::named("generating the bias").error(wgpu::Error::Validation {
        source: Box::new(DriverError),
        description: "Validation Error: bad binding".into(),
    });
    assert_eq!(error.to_string(), "the GPU rejected generating the bias");
    let source = std::error::Error::source(&error).expect("a source");
    assert_eq!(source.to_string(), "Validation Error: bad binding");
}
