"""Records SCALE-Sim 3.0.0's per-layer cycles for etch's exactness tests.

Runs SCALE-Sim through its Python API (its CLI ignores -s and writes large traces): the config is
read by SCALE-Sim's own parser (scale_config.read_conf_file) and the topology by its own loader
(topologies.load_arrays), then each layer runs in scalesim.simulator with traces off. Writes one CSV
per (topology, config) pair with SCALE-Sim's COMPUTE_REPORT columns.

Usage: python scripts/scalesim_record.py OUT_DIR TOPOLOGY.csv:CONFIG.cfg [...]
"""
import os
import sys
import tempfile
import time

from scalesim.layout_utils import layouts
from scalesim.scale_config import scale_config
from scalesim.simulator import simulator
from scalesim.topology_utils import topologies


def record(topo_path, cfg_path, out_dir):
    cfg = scale_config()
    cfg.read_conf_file(cfg_path)
    topo = topologies()
    topo.load_arrays(topofile=topo_path)
    sim = simulator()
    with tempfile.TemporaryDirectory() as tmp:
        sim.set_params(config_obj=cfg, topo_obj=topo, layout_obj=layouts(), top_path=tmp,
                       verbosity=False, save_trace=False)
        start = time.process_time()
        sim.run()
        cpu_s = time.process_time() - start
    name = os.path.basename(topo_path).rsplit('.', 1)[0] + '__' + os.path.basename(cfg_path).rsplit('.', 1)[0]
    out = os.path.join(out_dir, name + '.expected.csv')
    with open(out, 'w') as f:
        f.write('# SCALE-Sim 3.0.0, Python API; topology %s, config %s; %.1f CPU-s\n'
                % (os.path.basename(topo_path), os.path.basename(cfg_path), cpu_s))
        f.write('layer,total_cycles_incl_prefetch,total_cycles,stall_cycles\n')
        for lid, layer in enumerate(sim.single_layer_sim_object_list):
            items = layer.get_compute_report_items()
            f.write('%s,%d,%d,%d\n' % (topo.topo_arrays[lid][0], int(items[0]), int(items[1]), int(items[2])))
    print('%s: %.1f CPU-s' % (name, cpu_s), flush=True)


def main():
    out_dir = sys.argv[1]
    for pair in sys.argv[2:]:
        topo_path, cfg_path = pair.split(':')
        record(topo_path, cfg_path, out_dir)


if __name__ == '__main__':
    main()
