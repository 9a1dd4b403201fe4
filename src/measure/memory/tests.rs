//! Unit tests of the analytic model ([`super::analytic`]) and of its reproduction of the
//! paper's Table 1 ([`super::table1`]).

use super::paper::paper_rows;
use super::*;

fn row(name: &str) -> Table1Row {
    table1()
        .into_iter()
        .find(|r| r.model.starts_with(name))
        .unwrap()
}

fn cfg(arch: Arch) -> MemConfig {
    paper_rows()
        .into_iter()
        .find(|p| p.cfg.arch == arch)
        .unwrap()
        .cfg
}

#[test]
fn reproduced_per_pixel_figures_are_exact() {
    assert_eq!(analytic(&cfg(Arch::Irevnet)).unwrap().per_pixel, 640.0);
    assert_eq!(analytic(&cfg(Arch::Hybrid)).unwrap().per_pixel, 352.0);
    assert_eq!(analytic(&cfg(Arch::Layerwise)).unwrap().per_pixel, 320.0);
    for name in ["i-RevNet", "Hybrid", "Layer-wise"] {
        let r = row(name);
        assert!(r.bytes_per_pixel_exact, "{name}");
        assert_eq!(r.bytes_per_pixel, r.paper_bytes_per_pixel);
    }
}

#[test]
fn resnet_closed_form_and_its_gap_to_the_paper() {
    let b = analytic(&cfg(Arch::Resnet)).unwrap();
    // eq. 8c: 8 stored inputs per stage (2 blocks x [conv, BN, conv, BN])
    let z = 8.0 * (32.0 + 64.0 / 4.0 + 128.0 / 16.0 + 256.0 / 64.0) * 4.0;
    assert_eq!(z, 1920.0);
    assert_eq!(b.m_z_per_pixel, z);
    // eq. 10c at the last conv: p = 1/64, max(c) = 256
    assert_eq!(b.m_g_per_pixel, 256.0 / 64.0 * 4.0);
    assert_eq!(b.per_pixel, 1936.0);
    assert_eq!(b.peak_stage, 3);
    let r = row("ResNet");
    assert!(!r.bytes_per_pixel_exact);
    assert!((r.bytes_per_pixel_rel_diff - 8.0 / 1928.0).abs() < 1e-12);
}

#[test]
fn revnet_block_accounting_and_its_gap_to_the_paper() {
    let b = analytic(&cfg(Arch::Revnet)).unwrap();
    // 5c at the first block, c = 40; the global max-pooling term is smaller higher up
    assert_eq!(b.per_pixel, 5.0 * 40.0 * 4.0);
    assert_eq!(b.m_g_per_pixel, 40.0 * 4.0);
    assert_eq!(b.peak_stage, 0);
    assert!(!row("RevNet").bytes_per_pixel_exact);
    // same block type on 32 channels gives the i-RevNet's 640
    let mut c = cfg(Arch::Revnet);
    c.stage_channels = vec![32, 64, 128, 256];
    assert_eq!(analytic(&c).unwrap().per_pixel, 640.0);
}

#[test]
fn global_bottleneck_of_max_pooling() {
    // wide late stages: the stored pool inputs plus the local bottleneck of the top stage
    // exceed the first block
    let c = MemConfig::new(Arch::Revnet, vec![8, 64], vec![PoolKind::Max], vec![1, 1]);
    let b = analytic(&c).unwrap();
    // stage 0: 5 x 8 = 40; stage 1: 5 x 16 + 8 (stored pool input) = 88
    assert_eq!(b.per_pixel, 88.0 * 4.0);
    assert_eq!(b.m_z_per_pixel, (4.0 * 16.0 + 8.0) * 4.0);
    assert_eq!(b.peak_stage, 1);
}

#[test]
fn invertible_networks_peak_at_the_top_on_ties() {
    // every stage has 32 elements per pixel under P_c / P_b (Fig. 4: top block)
    for arch in [Arch::Irevnet, Arch::Hybrid, Arch::Layerwise] {
        let c = cfg(arch);
        assert_eq!(c.stage_widths(), vec![32.0; 4]);
        assert_eq!(analytic(&c).unwrap().peak_stage, 3);
    }
}

#[test]
fn weight_bytes_closed_form_and_printed_rounding() {
    let expect = [
        ("ResNet", 3_137_280u64, 12.5e6),  // 4 x sum(9c^2 + 2c) per stage
        ("RevNet", 3_172_416, 12.7e6),     // 2 x sum(9c^2 + 4c)
        ("i-RevNet", 42_794_240, 171e6),   // 2-2-2-1 blocks of 9c^2 + 4c
        ("Hybrid", 3_703_040, 14.8e6),     // 2-2-2-1 blocks of 4.5c^2 + 4c
        ("Layer-wise", 7_398_656, 29.6e6), // 4-4-4-2 units of 4.5c^2 + 2c
    ];
    for (name, params, paper) in expect {
        let r = row(name);
        assert_eq!(r.n_params, params, "{name}");
        assert_eq!(r.weight_bytes, 4.0 * params as f64);
        assert!(
            r.weight_within_rounding,
            "{name}: {} vs {paper}",
            r.weight_bytes
        );
        assert_eq!(r.paper_weight_bytes, paper);
    }
    // i-RevNet: one top-stage conv on half of 2048 channels, four per block, = 2048^2 x 9
    assert_eq!(4 * 1024u64 * 1024 * 9, 2048u64 * 2048 * 9);
}

#[test]
fn peak_formula_and_paper_units() {
    let resnet = analytic(&cfg(Arch::Resnet)).unwrap();
    assert_eq!(
        peak_bytes(&resnet, 240, 240, 32),
        resnet.m_theta_bytes + 1936.0 * 1_843_200.0
    );
    // the paper's own ResNet figures: 1928 x 240^2 x 32 + 12.5e6 = 3.566e9, not 3.81e9
    let paper_resnet = 12.5e6 + 1928.0 * TEXT_PIXELS;
    assert!((paper_resnet - 3.566_189_6e9).abs() < 1.0);
    assert!((paper_resnet / 1e9 - 3.81).abs() > 0.2);
    assert!((paper_resnet / (1u64 << 30) as f64 - 3.81).abs() > 0.4); // not GiB either
                                                                      // GB are 1e9: RevNet 640 x 1843200 + 12.7e6 = 1.192e9 -> "1.19 GB" (1.110 GiB)
    let revnet = 12.7e6 + 640.0 * TEXT_PIXELS;
    assert_eq!((revnet / 1e7).round() / 100.0, 1.19);
    assert!(((12.7e6 + 640.0 * TABLE_PIXELS) / 1e6 - 348.244_32).abs() < 1e-6); // Table 1: 348M
                                                                                // i-RevNet 1.35 GB with weights; hybrid 648 MB and layer-wise 590 MB without them
    assert_eq!(((171e6 + 640.0 * TEXT_PIXELS) / 1e7).round() / 100.0, 1.35);
    assert_eq!((352.0 * TEXT_PIXELS / 1e6).floor(), 648.0);
    assert_eq!((320.0 * TEXT_PIXELS / 1e6).round(), 590.0);
    for r in table1() {
        assert_eq!(
            r.peak_bytes_text,
            r.weight_bytes + r.bytes_per_pixel * TEXT_PIXELS
        );
    }
}

#[test]
fn bpe_scaling() {
    for arch in [
        Arch::Resnet,
        Arch::Revnet,
        Arch::Irevnet,
        Arch::Hybrid,
        Arch::Layerwise,
    ] {
        let f32b = analytic(&cfg(arch)).unwrap();
        let f16b = analytic(&cfg(arch).with_bpe(2)).unwrap();
        let f64b = analytic(&cfg(arch).with_bpe(8)).unwrap();
        assert_eq!(f16b.per_pixel * 2.0, f32b.per_pixel);
        assert_eq!(f16b.m_theta_bytes * 2.0, f32b.m_theta_bytes);
        assert_eq!(f64b.per_pixel, 2.0 * f32b.per_pixel);
        assert_eq!(f16b.n_params, f32b.n_params);
        assert_eq!(
            peak_bytes(&f16b, 32, 32, 8) * 2.0,
            peak_bytes(&f32b, 32, 32, 8)
        );
    }
}

fn assert_config_err(c: &MemConfig, needle: &str) {
    match analytic(c) {
        Err(e @ Error::Config { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(needle), "{msg}")
        }
        other => panic!("expected Error::Config containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn bad_configs_are_config_errors() {
    let base = cfg(Arch::Hybrid);
    assert_config_err(
        &MemConfig::new(Arch::Resnet, vec![], vec![], vec![]),
        "empty",
    );
    let mut c = base.clone();
    c.pooling.pop();
    assert_config_err(&c, "pooling entries");
    let mut c = base.clone();
    c.blocks_per_stage.push(1);
    assert_config_err(&c, "blocks_per_stage");
    let mut c = base.clone();
    c.blocks_per_stage[1] = 0;
    assert_config_err(&c, "blocks_per_stage[1]");
    assert_config_err(&base.clone().with_bpe(0), "bpe");
    let mut c = base.clone();
    c.stage_channels[3] = 256; // after P_b
    assert_config_err(&c, "P_b");
    let mut c = base.clone();
    c.stage_channels = vec![32, 64, 256, 256]; // P_c needs 128
    assert_config_err(&c, "P_c");
    let mut c = base.clone();
    c.pooling[0] = PoolKind::Max;
    c.stage_channels = vec![128, 128, 512, 512];
    assert_config_err(&c, "not invertible");
    let c = MemConfig::new(Arch::Hybrid, vec![30], vec![], vec![1]);
    assert_config_err(&c, "multiple of 4");
    let c = MemConfig::new(Arch::Revnet, vec![33], vec![], vec![1]);
    assert_config_err(&c, "multiple of 2");
    assert!(MemConfig::new(Arch::Resnet, vec![33], vec![], vec![1])
        .validate()
        .is_ok());
}

#[test]
fn assumptions_are_stated() {
    for arch in [
        Arch::Resnet,
        Arch::Revnet,
        Arch::Irevnet,
        Arch::Hybrid,
        Arch::Layerwise,
    ] {
        let b = analytic(&cfg(arch)).unwrap();
        assert!(b.assumptions.len() >= 8, "{arch:?}");
        assert!(b.assumptions.iter().any(|a| a.contains("stage-uniform")));
    }
    let rev = analytic(&cfg(Arch::Revnet)).unwrap();
    assert!(rev
        .assumptions
        .iter()
        .any(|a| a.contains("global bottleneck")));
}

#[test]
fn markdown_and_json() {
    let rows = table1();
    assert_eq!(rows.len(), 5);
    let md = table1_markdown(&rows);
    assert!(md.starts_with("| Model |"));
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| ")).count(),
        1 + rows.len()
    );
    assert!(
        md.contains("| i-RevNet | 32-128-512-2048 | P_c-P_c-P_c | 2-2-2-1 | 640 | 640 | +0.00% |")
    );
    assert!(md.contains("| 1936 | 1928 | +0.41% |"));
    let json = serde_json::to_string(&rows).unwrap();
    assert!(json.contains("\"paper_bytes_per_pixel\":352.0"));
    let b = analytic(&cfg(Arch::Hybrid)).unwrap();
    let back: MemBreakdown = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
    assert_eq!(back, b);
    let c: MemConfig =
        serde_json::from_str(&serde_json::to_string(&cfg(Arch::Revnet)).unwrap()).unwrap();
    assert_eq!(c, cfg(Arch::Revnet));
}
