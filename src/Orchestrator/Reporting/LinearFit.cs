namespace Sweep.Orchestrator.Reporting;

/// <summary>An ordinary least-squares line y = <see cref="Slope"/> × x + <see cref="Intercept"/>, and how well it fits (R²).</summary>
public sealed record LinearFit(double Slope, double Intercept, double RSquared, int Count)
{
    /// <summary>The fit through <paramref name="points"/>, or null with fewer than two distinct x values.</summary>
    public static LinearFit? Of(IReadOnlyList<(double X, double Y)> points)
    {
        if (points.Count < 2 || points.Select(p => p.X).Distinct().Count() < 2) return null;
        double meanX = points.Average(p => p.X), meanY = points.Average(p => p.Y);
        double sxx = points.Sum(p => (p.X - meanX) * (p.X - meanX));
        double sxy = points.Sum(p => (p.X - meanX) * (p.Y - meanY));
        double slope = sxy / sxx;
        double intercept = meanY - slope * meanX;
        double total = points.Sum(p => (p.Y - meanY) * (p.Y - meanY));
        double residual = points.Sum(p => Math.Pow(p.Y - (slope * p.X + intercept), 2));
        // Every y equal: the horizontal line explains them exactly.
        double rSquared = total <= 0 ? 1.0 : 1.0 - residual / total;
        return new LinearFit(slope, intercept, rSquared, points.Count);
    }

    public double At(double x) => Slope * x + Intercept;
}
