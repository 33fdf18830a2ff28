namespace MultiHeadServe.Features.Images;

/// <summary>
/// A decoded image: 8-bit RGB, interleaved (<c>R G B R G B …</c>), rows top to bottom, no row
/// padding, so <see cref="Rgb"/> holds exactly <c>Width * Height * 3</c> bytes.
/// </summary>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Rgb">The pixels; owned by this instance once constructed (do not mutate a shared one).</param>
/// <remarks>Equality compares the pixel array by reference, as records do.</remarks>
public sealed record DecodedImage(int Width, int Height, byte[] Rgb);
