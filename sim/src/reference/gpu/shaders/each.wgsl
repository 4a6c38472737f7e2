// The entry point of the one-dimensional kernels: one invocation per element index below p[0],
// each handled by the kernel's `item`. Workgroups lie on a 2-D grid (x at most 65535 wide).
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = (wg.y * nwg.x + wg.x) * WG + li;
    if (e < p[0]) {
        item(e);
    }
}
