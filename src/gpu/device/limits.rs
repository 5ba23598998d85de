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
    pub fn from_device(limits: &wgpu::Limits) -> Self {
        Self {
            max_buffer_bytes: limits.max_buffer_size,
            max_binding_bytes: limits.max_storage_buffer_binding_size,
            binding_alignment: u64::from(limits.min_storage_buffer_offset_alignment),
            max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PlanLimits;

    #[test]
    fn limits_come_from_the_device() {
        let device = wgpu::Limits {
            max_buffer_size: 1 << 30,
            max_storage_buffer_binding_size: 1 << 27,
            min_storage_buffer_offset_alignment: 64,
            max_compute_workgroups_per_dimension: 1000,
            ..wgpu::Limits::default()
        };
        assert_eq!(
            PlanLimits::from_device(&device),
            PlanLimits {
                max_buffer_bytes: 1 << 30,
                max_binding_bytes: 1 << 27,
                binding_alignment: 64,
                max_workgroups_per_dimension: 1000,
            }
        );
    }
}
