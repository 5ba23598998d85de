// The bindings every kernel shares, at the numbers Rust writes into the source
// (`src/gpu/dispatch/`, which binds them): the window's uniform, the slopes, and the window
// of the tensor the kernel updates. Each kernel names its uniform's type `Params` and what
// it indexes in its window `Unit`.

@group(0) @binding(BINDING_PARAMS) var<uniform> params: Params;

// Slope of head h is slopes[h / 4][h % 4]: a vec4 array, because a uniform array<f32> would
// have a 16-byte stride. MAX_HEADS / 4 vec4s: 16 KiB, the smallest uniform binding limit
// wgpu allows (WebGL2).
@group(0) @binding(BINDING_SLOPES) var<uniform> slopes: array<vec4<f32>, SLOPE_VEC4S>;

// Bound at an aligned offset at or before the window's first unit.
@group(0) @binding(BINDING_WINDOW) var<storage, read_write> window: array<Unit>;
