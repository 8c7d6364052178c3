import torch
from sandbox.runtime import load_ptx

PTX = r"""
.version 8.0
.target sm_80
.address_size 64

.visible .entry relu(
    .param .u64 x_ptr,
    .param .u64 y_ptr,
    .param .u32 n
)
{
    .reg .pred %p<2>;
    .reg .b32 %r<6>;
    .reg .f32 %f<3>;
    .reg .b64 %rd<6>;

    ld.param.u64 %rd1, [x_ptr];
    ld.param.u64 %rd2, [y_ptr];
    ld.param.u32 %r1, [n];
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %tid.x;
    mad.lo.s32 %r5, %r2, %r3, %r4;
    setp.ge.u32 %p1, %r5, %r1;
    @%p1 bra DONE;
    cvta.to.global.u64 %rd1, %rd1;
    cvta.to.global.u64 %rd2, %rd2;
    mul.wide.u32 %rd3, %r5, 4;
    add.s64 %rd4, %rd1, %rd3;
    add.s64 %rd5, %rd2, %rd3;
    ld.global.f32 %f1, [%rd4];
    max.f32 %f2, %f1, 0f00000000;
    st.global.f32 [%rd5], %f2;
DONE:
    ret;
}
"""


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = load_ptx(PTX).get_function("relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        self.relu(grid=((n + 255) // 256, 1, 1), block=(256, 1, 1), args=(x, y, n))
        return y
