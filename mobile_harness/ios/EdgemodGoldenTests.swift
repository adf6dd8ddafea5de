// EdgemodGoldenTests.swift: the golden-vector check of an edgemod Core ML artifact, on a simulator
// or an iPhone. Template for an XCTest unit-test target named "EdgemodGoldenTests" in a scheme
// named "EdgemodGolden" (docs/mobile.md sets the project up); not compiled in edgemod's CI.
//
// What it asserts, per golden item (golden/<artifact>.json, written by `edgemod export`):
//   - the model's score for every class is within tolerance.max_abs_score_diff of expected_scores;
//   - the decision at the shipped thresholds equals expected_decision, unless the item sits within
//     the tolerance of a threshold (threshold_margin <= tolerance), exactly as edgemod.runtime.golden does.
// Inputs are the golden inputs themselves (int32 token ids and mask, or a float32 NCHW image stored
// as base64 little-endian bytes): this checks the Core ML runtime on the device. The tokenizer and
// image pre-processing are checked by `edgemod harness golden`, which rebuilds the inputs from the
// raw payloads with the export folder's own files.
//
// Where the files come from:
//   EDGEMOD_MODEL   a compiled .mlmodelc (or an .mlpackage, compiled here) — set by
//                   `edgemod harness ios-test` through xcodebuild's TEST_RUNNER_ prefix
//   EDGEMOD_GOLDEN  the golden JSON
//   EDGEMOD_COMPUTE_UNITS  cpuOnly (default) | cpuAndGPU | cpuAndNeuralEngine | all
// Without the variables (a physical device cannot read the Mac's disk), the test uses the first
// .mlmodelc and "golden.json" bundled as resources of the test target.

import CoreML
import XCTest

final class EdgemodGoldenTests: XCTestCase {

    func testGoldenVectors() async throws {
        let golden = try GoldenFile.load(from: try Self.locate("EDGEMOD_GOLDEN", resource: "golden", ext: "json"))
        let model = try await Self.loadModel(at: try Self.locate("EDGEMOD_MODEL", resource: nil, ext: "mlmodelc"))
        let limit = golden.tolerance.maxAbsScoreDiff
        XCTAssertFalse(golden.items.isEmpty, "the golden file has no items")

        for item in golden.items {
            var features: [String: MLFeatureValue] = [:]
            for name in golden.inputNames {
                guard let tensor = item.inputs[name] else {
                    return XCTFail("\(item.key): the golden item has no input '\(name)'")
                }
                features[name] = MLFeatureValue(multiArray: try tensor.multiArray())
            }
            let output = try model.prediction(from: try MLDictionaryFeatureProvider(dictionary: features))
            let scores = try Self.scores(from: output, model: model, labels: golden.labels)

            XCTAssertEqual(scores.count, item.expectedScores.count, "\(item.key): number of scores")
            for (c, (got, want)) in zip(scores, item.expectedScores).enumerated() {
                XCTAssertLessThanOrEqual(abs(got - want), limit,
                                         "\(item.key): score of '\(golden.labels[c])' is \(got), expected \(want) ± \(limit)")
            }
            // Items this close to a threshold may flip within tolerance; edgemod.runtime.golden excuses them too.
            if item.thresholdMargin > limit {
                XCTAssertEqual(golden.thresholds.decide(scores, labels: golden.labels), item.expectedDecision,
                               "\(item.key): decision at the shipped thresholds")
            }
        }
    }

    // MARK: - model

    static func loadModel(at url: URL) async throws -> MLModel {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits()
        let compiled = url.pathExtension == "mlmodelc" ? url : try await MLModel.compileModel(at: url)
        return try MLModel(contentsOf: compiled, configuration: configuration)
    }

    static func computeUnits() -> MLComputeUnits {
        switch ProcessInfo.processInfo.environment["EDGEMOD_COMPUTE_UNITS"] ?? "cpuOnly" {
        case "all": return .all
        case "cpuAndGPU": return .cpuAndGPU
        case "cpuAndNeuralEngine": return .cpuAndNeuralEngine
        default: return .cpuOnly  // the golden scores were computed on CPU; fp16 on the ANE can drift further
        }
    }

    /// Single-label exports are Core ML classifiers: probabilities arrive as a {label: probability}
    /// dictionary. Multi-label exports return the `scores` tensor [1, C].
    static func scores(from output: MLFeatureProvider, model: MLModel, labels: [String]) throws -> [Double] {
        if let name = model.modelDescription.predictedProbabilitiesName,
           let probabilities = output.featureValue(for: name)?.dictionaryValue {
            return try labels.map { label in
                guard let p = probabilities[AnyHashable(label)] else { throw GoldenError.missingLabel(label) }
                return p.doubleValue
            }
        }
        guard let array = output.featureValue(for: "scores")?.multiArrayValue else {
            throw GoldenError.noScores(Array(output.featureNames))
        }
        return (0..<array.count).map { array[$0].doubleValue }
    }

    static func locate(_ variable: String, resource: String?, ext: String) throws -> URL {
        if let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let bundle = Bundle(for: EdgemodGoldenTests.self)
        if let resource, let url = bundle.url(forResource: resource, withExtension: ext) { return url }
        if resource == nil, let url = bundle.urls(forResourcesWithExtension: ext, subdirectory: nil)?.first { return url }
        throw GoldenError.missingFile(variable, "\(resource ?? "*").\(ext)")
    }
}

// MARK: - golden file (explicit CodingKeys: convertFromSnakeCase would also rewrite label and input names)

struct GoldenFile: Decodable {
    let target: String
    let inputNames: [String]
    let labels: [String]
    let thresholds: Thresholds
    let tolerance: Tolerance
    let items: [Item]

    enum CodingKeys: String, CodingKey {
        case target, labels, thresholds, tolerance, items
        case inputNames = "input_names"
    }

    static func load(from url: URL) throws -> GoldenFile {
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true  // Python writes an unbounded threshold_margin as Infinity
        return try decoder.decode(GoldenFile.self, from: try Data(contentsOf: url))
    }
}

struct Tolerance: Decodable {
    let maxAbsScoreDiff: Double
    enum CodingKeys: String, CodingKey { case maxAbsScoreDiff = "max_abs_score_diff" }
}

struct Item: Decodable {
    let key: String
    let inputs: [String: Tensor]
    let expectedScores: [Double]
    let expectedDecision: Decision
    let thresholdMargin: Double

    enum CodingKeys: String, CodingKey {
        case key, inputs
        case expectedScores = "expected_scores", expectedDecision = "expected_decision"
        case thresholdMargin = "threshold_margin"
    }
}

/// One label (single-label models) or the list of firing labels (multi-label models).
enum Decision: Decodable, Equatable {
    case single(String)
    case multi([String])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let label = try? container.decode(String.self) { self = .single(label) } else {
            self = .multi(try container.decode([String].self))
        }
    }
}

struct Thresholds: Decodable {
    struct ClassThreshold: Decodable { let threshold: Double }
    let policy: String
    let benign: String?
    let multiLabel: Bool
    let perClass: [String: ClassThreshold]

    enum CodingKeys: String, CodingKey {
        case policy, benign
        case multiLabel = "multi_label", perClass = "per_class"
    }

    /// training.thresholds.decide, ported: the highest-scoring class over its threshold, else benign.
    func decide(_ scores: [Double], labels: [String]) -> Decision {
        let cuts = labels.map { perClass[$0]?.threshold ?? .infinity }
        if multiLabel {
            return .multi(labels.indices.filter { scores[$0] >= cuts[$0] }.map { labels[$0] })
        }
        var best: Int? = nil
        let all = policy == "argmax" || perClass.isEmpty
        for c in scores.indices where all || scores[c] >= cuts[c] {
            if best == nil || scores[c] > scores[best!] { best = c }  // strict: first maximum wins, as numpy
        }
        if let best { return .single(labels[best]) }
        return .single(benign ?? labels[0])
    }
}

struct Tensor: Decodable {
    let shape: [Int]
    let dtype: String
    let ints: [Int32]?
    let base64: String?

    enum CodingKeys: String, CodingKey { case shape, dtype, encoding, data }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        shape = try container.decode([Int].self, forKey: .shape)
        dtype = try container.decode(String.self, forKey: .dtype)
        if try container.decodeIfPresent(String.self, forKey: .encoding) == "base64-le" {
            base64 = try container.decode(String.self, forKey: .data)
            ints = nil
        } else {
            ints = try container.decode([Int32].self, forKey: .data)
            base64 = nil
        }
    }

    func multiArray() throws -> MLMultiArray {
        let shapeNumbers = shape.map { NSNumber(value: $0) }
        switch dtype {
        case "int32":
            let values = ints ?? []
            let array = try MLMultiArray(shape: shapeNumbers, dataType: .int32)
            guard values.count == array.count else { throw GoldenError.badTensor("\(values.count) ids for shape \(shape)") }
            let pointer = array.dataPointer.bindMemory(to: Int32.self, capacity: values.count)
            for (i, value) in values.enumerated() { pointer[i] = value }
            return array
        case "float32":
            guard let base64, let data = Data(base64Encoded: base64) else { throw GoldenError.badTensor("bad base64") }
            let array = try MLMultiArray(shape: shapeNumbers, dataType: .float32)
            guard data.count == array.count * MemoryLayout<Float32>.size else {
                throw GoldenError.badTensor("\(data.count) bytes for shape \(shape)")
            }
            // Stored little-endian, the byte order of every iOS device: a plain copy, row-major like NCHW.
            data.withUnsafeBytes { raw in array.dataPointer.copyMemory(from: raw.baseAddress!, byteCount: data.count) }
            return array
        default:
            throw GoldenError.badTensor("unsupported dtype \(dtype)")
        }
    }
}

enum GoldenError: Error, CustomStringConvertible {
    case missingFile(String, String)
    case missingLabel(String)
    case noScores([String])
    case badTensor(String)

    var description: String {
        switch self {
        case let .missingFile(variable, resource):
            return "set \(variable) (edgemod harness ios-test does) or add \(resource) to the test target's resources"
        case let .missingLabel(label): return "the model's probabilities have no label '\(label)': wrong artifact for this golden file?"
        case let .noScores(names): return "the model has no probabilities or 'scores' output (outputs: \(names))"
        case let .badTensor(why): return "golden input: \(why)"
        }
    }
}
