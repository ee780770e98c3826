//! `soak`: hours of steady chat while the server's memory, open files and CPU are sampled,
//! written as a CSV and drawn as a PNG (issue 18 item 5: "memory and file descriptors are
//! flat"). The chat itself is the `chat` scenario's fleet; this module only watches the
//! server and reports whether what it watched stayed flat.
//!
//! The PNG is drawn with `plotters` (bitmap backend, text from a TTF file read at run time:
//! DejaVu Sans or Liberation Sans from Debian's fonts). Without such a font the CSV is still
//! written and the run says the plot was skipped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// One look at the server.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the chat started.
    pub at_s: f64,
    pub rss_kib: u64,
    pub open_files: u64,
    /// CPU (user + system) used since the previous sample, in percent of one core.
    pub cpu_pct: f64,
}

/// Samples `pids` every `every` until stopped; the samples are read with [`Sampler::finish`].
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(pids: Vec<u32>, every: Duration) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = tokio_util::sync::CancellationToken::new();
        let (out, token) = (samples.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let ticks = |pids: &[u32]| -> u64 { pids.iter().filter_map(|&p| crate::fleet::cpu_ticks(p)).sum() };
            let mut last = (Instant::now(), ticks(&pids));
            loop {
                let now = Instant::now();
                let t = ticks(&pids);
                let wall = now.duration_since(last.0).as_secs_f64();
                let cpu_pct = if wall > 0.0 {
                    t.saturating_sub(last.1) as f64 / 100.0 / wall * 100.0
                } else {
                    0.0
                };
                last = (now, t);
                let sample = Sample {
                    at_s: now.duration_since(started).as_secs_f64(),
                    rss_kib: pids.iter().filter_map(|&p| crate::server::rss_kib(p)).sum(),
                    open_files: pids.iter().filter_map(|&p| open_files(p)).sum(),
                    cpu_pct,
                };
                if let Ok(mut v) = out.lock() {
                    v.push(sample);
                }
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
        Self { samples, stop, task }
    }

    pub async fn finish(self) -> Vec<Sample> {
        self.stop.cancel();
        let _ = self.task.await;
        self.samples.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// Open file descriptors of `pid` (sockets, the database, the WAL…).
pub fn open_files(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// What the run says of the samples taken after `warm_up_s`: first, last and highest value,
/// and the growth per hour of a least-squares line through them.
#[derive(Debug, Clone, Copy)]
pub struct Trend {
    pub first: f64,
    pub last: f64,
    pub max: f64,
    pub per_hour: f64,
}

pub fn trend(samples: &[Sample], warm_up_s: f64, value: impl Fn(&Sample) -> f64) -> Option<Trend> {
    let kept: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.at_s >= warm_up_s)
        .map(|s| (s.at_s, value(s)))
        .collect();
    if kept.len() < 2 {
        return None;
    }
    let n = kept.len() as f64;
    let (mx, my) = (
        kept.iter().map(|p| p.0).sum::<f64>() / n,
        kept.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let var: f64 = kept.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let cov: f64 = kept.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = if var > 0.0 { cov / var } else { 0.0 };
    Some(Trend {
        first: kept[0].1,
        last: kept[kept.len() - 1].1,
        max: kept.iter().map(|p| p.1).fold(f64::MIN, f64::max),
        per_hour: slope * 3600.0,
    })
}

pub fn write_csv(path: &Path, samples: &[Sample]) -> Result<()> {
    let mut out = String::from("seconds,rss_kib,open_files,cpu_pct\n");
    for s in samples {
        out.push_str(&format!(
            "{:.1},{},{},{:.1}\n",
            s.at_s, s.rss_kib, s.open_files, s.cpu_pct
        ));
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Draws RSS (MiB) and open files over time, one panel each. Returns false when no font
/// was found (nothing drawn).
pub fn write_png(path: &Path, samples: &[Sample], title: &str) -> Result<bool> {
    use plotters::prelude::*;
    let Some(font) = FONTS.iter().find_map(|f| std::fs::read(f).ok()) else {
        return Ok(false);
    };
    // plotters keeps registered fonts for the life of the process.
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| anyhow::anyhow!("the font could not be read"))?;

    let minutes = |s: &Sample| s.at_s / 60.0;
    let end = samples.last().map_or(1.0, minutes).max(1.0);
    let rss_max = samples.iter().map(|s| s.rss_kib as f64 / 1024.0).fold(1.0, f64::max) * 1.15;
    let fd_max = samples.iter().map(|s| s.open_files as f64).fold(1.0, f64::max) * 1.15;

    let root = BitMapBackend::new(path, (1200, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (top, bottom) = root.split_vertically(340);
    let panel = |area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
                 caption: &str,
                 y_max: f64,
                 y_desc: &str,
                 color: RGBColor,
                 value: &dyn Fn(&Sample) -> f64|
     -> Result<()> {
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc(y_desc)
            .label_style(("sans-serif", 14))
            .draw()?;
        chart.draw_series(LineSeries::new(
            samples.iter().map(|s| (minutes(s), value(s))),
            color.stroke_width(2),
        ))?;
        Ok(())
    };
    panel(&top, "server RSS", rss_max, "MiB", RED, &|s| s.rss_kib as f64 / 1024.0)?;
    panel(&bottom, "open file descriptors", fd_max, "files", BLUE, &|s| {
        s.open_files as f64
    })?;
    root.present()?;
    Ok(true)
}

/// Where the soak writes: `<out>/soak.csv` and `<out>/soak.png`.
pub fn paths(out: &Path) -> (PathBuf, PathBuf) {
    (out.join("soak.csv"), out.join("soak.png"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: f64, rss: u64) -> Sample {
        Sample {
            at_s: s,
            rss_kib: rss,
            open_files: 10,
            cpu_pct: 0.0,
        }
    }

    #[test]
    fn a_flat_series_has_no_growth_and_a_rising_one_has_its_slope() {
        let flat: Vec<_> = (0..10).map(|i| at(f64::from(i) * 60.0, 1000)).collect();
        let t = trend(&flat, 0.0, |s| s.rss_kib as f64).unwrap();
        assert!(t.per_hour.abs() < 1e-9);
        // +1 KiB a minute is +60 KiB an hour; the warm-up's samples are left out.
        let mut rising: Vec<_> = (0..10).map(|i| at(f64::from(i) * 60.0, 1000 + i as u64)).collect();
        rising[0].rss_kib = 50_000;
        let t = trend(&rising, 30.0, |s| s.rss_kib as f64).unwrap();
        assert!((t.per_hour - 60.0).abs() < 1e-6, "{}", t.per_hour);
        assert_eq!((t.first, t.last, t.max), (1001.0, 1009.0, 1009.0));
    }

    #[test]
    fn the_csv_and_the_plot_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let samples: Vec<_> = (0..30)
            .map(|i| at(f64::from(i) * 10.0, 40_000 + i as u64 * 3))
            .collect();
        let (csv, png) = paths(dir.path());
        write_csv(&csv, &samples).unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        assert!(text.starts_with("seconds,rss_kib,open_files,cpu_pct\n0.0,40000,10,0.0\n"));
        assert_eq!(text.lines().count(), 31);
        if write_png(&png, &samples, "test").unwrap() {
            let bytes = std::fs::read(&png).unwrap();
            assert_eq!(&bytes[1..4], b"PNG");
        }
    }
}
