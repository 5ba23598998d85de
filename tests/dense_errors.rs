//! The engine layout's refusals: typed, before anything is recorded or written, the cache
//! left as it was.

mod common;

use alibi_wgpu::{AlibiConfig, AlibiError, AlibiPositionalBias, GenerationPath};

#[test]
fn refusals_are_typed_and_leave_everything_as_it_was() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(4));
    alibi.forward(8, 8).unwrap();
    let stats = alibi.cache_stats();
    let device = alibi.device().clone();
    let storage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
    let target = common::patterned(&device, 4 * 8 * 8 * 4 + 64, storage);
    let before = common::read_all(&alibi, &target);
    let mut encoder = device.create_command_encoder(&Default::default());
    match alibi.encode_into(&mut encoder, 8, 8, &target, 2) {
        Err(AlibiError::MisalignedOffset {
            offset: 2,
            alignment: 4,
        }) => {}
        other => panic!("{other:?}"),
    }
    match alibi.encode_into(&mut encoder, 8, 8, &target, 68) {
        Err(AlibiError::TargetTooSmall { needed, size, .. }) => {
            assert_eq!((needed, size), (68 + 1024, 1088));
        }
        other => panic!("{other:?}"),
    }
    let unbindable = common::patterned(
        &device,
        2048,
        wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
    );
    assert!(matches!(
        alibi.encode_into(&mut encoder, 8, 8, &unbindable, 0),
        Err(AlibiError::TargetUsage { .. })
    ));
    assert!(matches!(
        alibi.encode_into(&mut encoder, 1 << 25, 8, &target, 0),
        Err(AlibiError::SequenceTooLong { .. })
    ));
    assert!(matches!(
        alibi.forward_dense(1 << 24, 1 << 24),
        Err(AlibiError::TooLarge { .. })
    ));
    if common::generation_paths(gpu).contains(&GenerationPath::HostMapped) {
        let mappable = common::patterned(&device, 2048, wgpu::BufferUsages::MAP_WRITE);
        assert!(matches!(
            alibi.write_into(8, 8, &mappable, 4),
            Err(AlibiError::MisalignedOffset {
                offset: 4,
                alignment: 8
            })
        ));
    }
    // Nothing was recorded, written, counted or reordered.
    alibi.queue().submit([encoder.finish()]);
    assert_eq!(common::read_all(&alibi, &target), before);
    assert_eq!(alibi.cache_stats(), stats);
    // A windowed device refuses a row that no binding holds.
    let mut narrow = common::windowed_module(gpu, Some(256), AlibiConfig::new(2));
    assert!(matches!(
        narrow.forward_dense(1, 100),
        Err(AlibiError::RowTooLarge { .. })
    ));
}

#[test]
fn a_buffer_of_another_device_is_refused_before_anything_is_recorded() {
    let Some(_) = common::gpu() else { return };
    // Two devices of one instance (wgpu tells their buffers apart within an instance).
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let open = || pollster::block_on(adapter.request_device(&Default::default())).unwrap();
    let ((mine, queue), (theirs, _)) = (open(), open());
    let mut alibi = AlibiPositionalBias::with_config(&mine, &queue, AlibiConfig::new(4)).unwrap();
    alibi.forward(8, 8).unwrap();
    let stats = alibi.cache_stats();
    let foreign = theirs.create_buffer(&wgpu::BufferDescriptor {
        label: Some("another device's"),
        size: 2048,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = mine.create_command_encoder(&Default::default());
    match alibi.encode_into(&mut encoder, 8, 8, &foreign, 0) {
        Err(error @ AlibiError::ForeignTarget { .. }) => {
            assert!(error.to_string().contains("module's device"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(alibi.cache_stats(), stats);
    // The encoder is still good: nothing was recorded into it.
    queue.submit([encoder.finish()]);
}
