// Host: c = a + b over all Tensix cores, bfloat16 tiles, Mesh API (TT-Metal 2026).
#include <cstdint>
#include <vector>
#include <tt-metalium/bfloat16.hpp>
#include <tt-metalium/constants.hpp>
#include <tt-metalium/distributed.hpp>
#include <tt-metalium/host_api.hpp>
#include <tt-metalium/tensor_accessor_args.hpp>

using namespace tt;
using namespace tt::tt_metal;

int main() {
    constexpr int device_id = 0;
    auto mesh_device = distributed::MeshDevice::create_unit_mesh(device_id);
    distributed::MeshCommandQueue& cq = mesh_device->mesh_command_queue();
    distributed::MeshWorkload workload;
    auto device_range = distributed::MeshCoordinateRange(mesh_device->shape());
    Program program = CreateProgram();
    CoreCoord grid = mesh_device->compute_with_storage_grid_size();

    constexpr uint32_t n_tiles = 1000;
    auto [num_cores, all_cores, core_group_1, core_group_2, tiles_per_core_1, tiles_per_core_2] =
        split_work_to_cores(grid, n_tiles);
    constexpr uint32_t elements_per_tile = constants::TILE_WIDTH * constants::TILE_HEIGHT;
    constexpr uint32_t tile_bytes = sizeof(bfloat16) * elements_per_tile;

    distributed::DeviceLocalBufferConfig dram_config{.page_size = tile_bytes, .buffer_type = BufferType::DRAM};
    distributed::ReplicatedBufferConfig buffer_config{.size = n_tiles * tile_bytes};
    auto a_buffer = distributed::MeshBuffer::create(buffer_config, dram_config, mesh_device.get());
    auto b_buffer = distributed::MeshBuffer::create(buffer_config, dram_config, mesh_device.get());
    auto c_buffer = distributed::MeshBuffer::create(buffer_config, dram_config, mesh_device.get());

    std::vector<bfloat16> a_data(elements_per_tile * n_tiles, bfloat16(1.5f));
    std::vector<bfloat16> b_data(elements_per_tile * n_tiles, bfloat16(-0.5f));
    distributed::EnqueueWriteMeshBuffer(cq, a_buffer, a_data, false);
    distributed::EnqueueWriteMeshBuffer(cq, b_buffer, b_data, false);

    constexpr uint32_t tiles_per_cb = 2;
    constexpr uint32_t cb_a = CBIndex::c_0;
    constexpr uint32_t cb_b = CBIndex::c_1;
    constexpr uint32_t cb_out = CBIndex::c_16;
    CreateCircularBuffer(program, all_cores,
        CircularBufferConfig(tiles_per_cb * tile_bytes, {{cb_a, DataFormat::Float16_b}}).set_page_size(cb_a, tile_bytes));
    CreateCircularBuffer(program, all_cores,
        CircularBufferConfig(tiles_per_cb * tile_bytes, {{cb_b, DataFormat::Float16_b}}).set_page_size(cb_b, tile_bytes));
    CreateCircularBuffer(program, all_cores,
        CircularBufferConfig(tiles_per_cb * tile_bytes, {{cb_out, DataFormat::Float16_b}}).set_page_size(cb_out, tile_bytes));

    std::vector<uint32_t> reader_args;
    TensorAccessorArgs(*a_buffer).append_to(reader_args);
    TensorAccessorArgs(*b_buffer).append_to(reader_args);
    auto reader = CreateKernel(
        program, "kernels/dataflow/read_tiles.cpp", all_cores,
        DataMovementConfig{.processor = DataMovementProcessor::RISCV_0, .noc = NOC::RISCV_0_default, .compile_args = reader_args});

    std::vector<uint32_t> writer_args;
    TensorAccessorArgs(*c_buffer).append_to(writer_args);
    auto writer = CreateKernel(
        program, "kernels/dataflow/write_tiles.cpp", all_cores,
        DataMovementConfig{.processor = DataMovementProcessor::RISCV_1, .noc = NOC::RISCV_1_default, .compile_args = writer_args});

    auto compute = CreateKernel(program, "kernels/compute/add_tiles.cpp", all_cores, ComputeConfig{.math_fidelity = MathFidelity::HiFi4});

    uint32_t start_tile = 0;
    for (uint32_t i = 0; i < num_cores; i++) {
        CoreCoord core = {i % grid.x, i / grid.x};
        uint32_t core_tiles = core_group_1.contains(core) ? tiles_per_core_1 : tiles_per_core_2;
        SetRuntimeArgs(program, reader, core, {a_buffer->address(), b_buffer->address(), core_tiles, start_tile});
        SetRuntimeArgs(program, writer, core, {c_buffer->address(), core_tiles, start_tile});
        SetRuntimeArgs(program, compute, core, {core_tiles});
        start_tile += core_tiles;
    }

    workload.add_program(device_range, std::move(program));
    distributed::EnqueueMeshWorkload(cq, workload, false);
    distributed::Finish(cq);

    std::vector<bfloat16> c_data;
    distributed::ReadShard(cq, c_data, c_buffer, distributed::MeshCoordinate(0, 0), true);
    for (size_t i = 0; i < c_data.size(); ++i) {
        if (static_cast<float>(c_data[i]) != 1.0f) {
            return 1;
        }
    }
    mesh_device->close();
    return 0;
}
