//! Scratch: process CPU time per convolution (forward, input grad, weight grad) of given shapes
//! on one thread, robust to other load on the machine.
use candle_core::{DType, Device, Tensor};
use revstab::backend::cpu::{self, ConvPath};

fn cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match args[0].as_str() {
        "gemm" => ConvPath::Gemm,
        "direct" => ConvPath::Direct,
        _ => ConvPath::Auto,
    };
    let secs: f64 = args[1].parse().unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut total = 0.0;
    for spec in &args[2..] {
        let v: Vec<usize> = spec.split(',').map(|x| x.parse().unwrap()).collect();
        let (b, cin, cout, s) = (v[0], v[1], v[2], v[3]);
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (b, cin, s, s), &dev).unwrap();
        let w = Tensor::randn(0f32, 0.1, (cout, cin, 3, 3), &dev).unwrap();
        let g = Tensor::randn(0f32, 1.0, (b, cout, s, s), &dev).unwrap();
        let flop = 2.0 * (b * cout * cin * 9 * s * s) as f64;
        let mut line = format!("{b:4} {cin:4} {cout:4} {s:3}");
        for which in 0..3 {
            let run = || {
                pool.install(|| match which {
                    0 => cpu::conv2d_same_via(&x, &w, path).unwrap(),
                    1 => cpu::conv2d_same_input_grad_via(&g, &w, path).unwrap(),
                    _ => cpu::conv2d_same_weight_grad_via(&x, &g, 3, path).unwrap(),
                })
            };
            run();
            let c0 = cpu_s();
            let mut n = 0;
            while cpu_s() - c0 < secs {
                run();
                n += 1;
            }
            let per = (cpu_s() - c0) / n as f64;
            total += per;
            line += &format!("  {:8.3} ms {:6.1} GF/s", per * 1e3, flop / per / 1e9);
        }
        println!("{line}");
        let _ = DType::F32;
    }
    println!("total {:.3} ms", total * 1e3);
}
