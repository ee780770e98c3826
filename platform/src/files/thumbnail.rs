//! Thumbnails of uploaded images: made once, when an image upload completes, from its
//! bytes as stored, and kept beside the file (`thumbs/<app>/<file>`). Decoding is bounded
//! (the source's bytes, its declared width and height, and what the decoder may allocate),
//! so a decompression bomb is refused instead of filling memory; an image that cannot be
//! decoded simply gets no thumbnail and stays a usable file.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

/// The longest edge of a thumbnail, in pixels (the image is scaled to fit, never enlarged).
pub const THUMBNAIL_EDGE: u32 = 256;

/// Images larger than this many bytes get no thumbnail (they are not even read back).
pub const MAX_SOURCE_BYTES: u64 = 32 * 1024 * 1024;

/// The widest and tallest image decoded for a thumbnail.
pub const MAX_SOURCE_EDGE: u32 = 12_000;

/// What the decoder may allocate for one image.
pub const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;

/// The content type of every thumbnail.
pub const THUMBNAIL_CONTENT_TYPE: &str = "image/png";

/// Whether a file of this content type gets a thumbnail attempt: the web's raster formats.
pub fn applies_to(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/jpg" | "image/pjpeg" | "image/gif" | "image/webp"
    )
}

/// Why no thumbnail was made.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("not an image this node can decode")]
    UnknownFormat,
    #[error("the image is too large to decode for a thumbnail: {0}")]
    TooLarge(String),
    #[error("the image cannot be decoded: {0}")]
    Malformed(String),
}

/// A PNG of `source` scaled to fit `THUMBNAIL_EDGE` x `THUMBNAIL_EDGE` (aspect kept; an image
/// already smaller is kept at its size). CPU-bound: run it off the async threads.
pub fn make(source: &[u8]) -> Result<Vec<u8>, ThumbnailError> {
    if source.len() as u64 > MAX_SOURCE_BYTES {
        return Err(ThumbnailError::TooLarge(format!("{} bytes", source.len())));
    }
    let mut reader = ImageReader::new(Cursor::new(source))
        .with_guessed_format()
        .map_err(|e| ThumbnailError::Malformed(e.to_string()))?;
    let format = reader.format().ok_or(ThumbnailError::UnknownFormat)?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
    ) {
        return Err(ThumbnailError::UnknownFormat);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_EDGE);
    limits.max_image_height = Some(MAX_SOURCE_EDGE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => ThumbnailError::TooLarge(l.to_string()),
        other => ThumbnailError::Malformed(other.to_string()),
    })?;
    let small = if image.width() > THUMBNAIL_EDGE || image.height() > THUMBNAIL_EDGE {
        image.thumbnail(THUMBNAIL_EDGE, THUMBNAIL_EDGE)
    } else {
        image
    };
    let mut out = Cursor::new(Vec::new());
    small
        .write_to(&mut out, ImageFormat::Png)
        .map_err(|e| ThumbnailError::Malformed(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png)
            .unwrap_or_else(|e| panic!("{e}"));
        out.into_inner()
    }

    #[test]
    fn a_large_image_is_scaled_to_fit_and_a_small_one_kept() {
        let t = make(&png(1024, 512)).unwrap_or_else(|e| panic!("{e}"));
        let d = image::load_from_memory(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((d.width(), d.height()), (256, 128));
        let t = make(&png(40, 30)).unwrap_or_else(|e| panic!("{e}"));
        let d = image::load_from_memory(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((d.width(), d.height()), (40, 30));
    }

    /// A valid PNG of a few bytes that declares `edge` x `edge` pixels: a decompression bomb
    /// as far as the header goes.
    pub(crate) fn bomb(edge: u32) -> Vec<u8> {
        let mut p = png(1, 1);
        p[16..20].copy_from_slice(&edge.to_be_bytes());
        p[20..24].copy_from_slice(&edge.to_be_bytes());
        let crc = crc32fast::hash(&p[12..29]);
        p[29..33].copy_from_slice(&crc.to_be_bytes());
        p
    }

    #[test]
    fn a_decompression_bomb_is_refused_by_its_declared_size() {
        let b = bomb(100_000);
        assert!(b.len() < 200, "{} bytes", b.len());
        assert!(
            matches!(make(&b), Err(ThumbnailError::TooLarge(_))),
            "{:?}",
            make(&b).err()
        );
    }

    #[test]
    fn garbage_and_truncated_images_are_refused_without_a_panic() {
        assert!(matches!(
            make(b"not an image at all"),
            Err(ThumbnailError::UnknownFormat)
        ));
        let mut p = png(300, 300);
        p.truncate(p.len() / 2);
        assert!(matches!(make(&p), Err(ThumbnailError::Malformed(_))));
    }
}
