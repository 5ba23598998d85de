//! Everything that talks to wgpu: the device side (`device`), the windowed dispatch every
//! kernel uses (`dispatch`), and its users, the bias kernels (`bias`) and the score kernel
//! (`scores`). Each layer imports only those before it.

pub(crate) mod device;
pub(crate) mod dispatch;

pub(crate) mod attention;
pub(crate) mod bias;
pub(crate) mod scores;

#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) mod tests {
    pub(crate) mod shader_interface;
    pub(crate) mod translate;
    pub(crate) mod uniforms;
}
