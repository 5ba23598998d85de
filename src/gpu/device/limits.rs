//! The device limits every plan respects, read once per module.

/// The limits a plan must respect, read from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlanLimits {
    pub max_buffer_bytes: u64,
    pub max_binding_bytes: u64,
    pub binding_alignment: u64,
    pub max_workgroups_per_dimension: u32,
}

impl PlanLimits {
    pub fn from_device(limits: &wgpu::Limits, binding_override: Option<u64>) -> Self {
        let device_binding = limits.max_storage_buffer_binding_size;
        Self {
            max_buffer_bytes: limits.max_buffer_size,
            max_binding_bytes: binding_override.map_or(device_binding, |o| o.min(device_binding)),
            binding_alignment: u64::from(limits.min_storage_buffer_offset_alignment),
            max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PlanLimits;

    #[test]
    fn limits_come_from_the_device_and_the_window_override_only_lowers_them() {
        let device = wgpu::Limits {
            max_buffer_size: 1 << 30,
            max_storage_buffer_binding_size: 1 << 27,
            min_storage_buffer_offset_alignment: 64,
            max_compute_workgroups_per_dimension: 1000,
            ..wgpu::Limits::default()
        };
        assert_eq!(
            PlanLimits::from_device(&device, None),
            PlanLimits {
                max_buffer_bytes: 1 << 30,
                max_binding_bytes: 1 << 27,
                binding_alignment: 64,
                max_workgroups_per_dimension: 1000,
            }
        );
        let window = |bytes| PlanLimits::from_device(&device, Some(bytes)).max_binding_bytes;
        assert_eq!(window(4096), 4096);
        assert_eq!(window(1 << 40), 1 << 27);
    }
}
