// GoldenVectorsTest.kt: the golden-vector check of an edgemod LiteRT (.tflite) artifact on an
// Android phone. Template for an instrumented test (src/androidTest/java/ai/edgemod/golden/) of a
// module whose applicationId is "ai.edgemod.golden" (docs/mobile.md); not compiled in edgemod's CI.
//
// Gradle (module build.gradle.kts):
//   android { defaultConfig { testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner" } }
//   dependencies {
//       androidTestImplementation("com.google.ai.edge.litert:litert:<version>")   // org.tensorflow.lite.*
//       androidTestImplementation("androidx.test:runner:<version>")
//       androidTestImplementation("androidx.test.ext:junit:<version>")
//   }
//
// What it asserts, per golden item (golden/<artifact>.json, written by `edgemod export`):
//   - every class score is within tolerance.max_abs_score_diff of expected_scores;
//   - the decision at the shipped thresholds equals expected_decision, unless the item sits within
//     the tolerance of a threshold (threshold_margin <= tolerance), exactly as edgemod.runtime.golden does.
// It feeds the golden inputs (int32 token ids and mask, or a float32 NCHW image stored as base64
// little-endian), quantizing them when the model's input is int8, with the interpreter's default
// CPU path (XNNPACK) and the chosen thread count: the LiteRT runtime on this phone is what is
// checked. The tokenizer and image pre-processing are checked by `edgemod harness golden`.
//
// Files: instrumentation arguments `model`, `golden` (paths on the phone) and `threads`, as
// `edgemod harness android-golden` passes them (it pushes into /sdcard/Android/data/<app>/files,
// which the app may read; /data/local/tmp is closed to apps). Without arguments the test reads
// model.tflite and golden.json from its own assets (src/androidTest/assets/).

package ai.edgemod.golden

import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import org.json.JSONArray
import org.json.JSONObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.util.Base64
import kotlin.math.abs

@RunWith(AndroidJUnit4::class)
class GoldenVectorsTest {
    private val arguments = InstrumentationRegistry.getArguments()
    private val testContext = InstrumentationRegistry.getInstrumentation().context  // the test APK: its assets

    @Test
    fun goldenVectors() {
        val golden = JSONObject(String(readFile("golden", "golden.json"), Charsets.UTF_8))
        val threads = arguments.getString("threads")?.toInt() ?: 1
        val modelBytes = readFile("model", "model.tflite")
        val model = ByteBuffer.allocateDirect(modelBytes.size).order(ByteOrder.nativeOrder()).put(modelBytes)
        model.rewind()

        Interpreter(model, Interpreter.Options().setNumThreads(threads)).use { interpreter ->
            val inputNames = golden.getJSONArray("input_names").strings()
            val labels = golden.getJSONArray("labels").strings()
            val thresholds = golden.getJSONObject("thresholds")
            val limit = golden.getJSONObject("tolerance").getDouble("max_abs_score_diff")
            val tensorOf = inputOrder(interpreter, inputNames)
            assertEquals("model inputs vs golden input_names", inputNames.size, tensorOf.size)
            val items = golden.getJSONArray("items")
            assertTrue("the golden file has no items", items.length() > 0)

            for (i in 0 until items.length()) {
                val item = items.getJSONObject(i)
                val key = item.getString("key")
                val stored = item.getJSONObject("inputs")
                val buffers = arrayOfNulls<Any>(inputNames.size)
                inputNames.forEachIndexed { argument, name ->
                    val index = tensorOf[argument]
                    buffers[index] = inputBuffer(stored.getJSONObject(name), interpreter.getInputTensor(index))
                }
                val outputTensor = interpreter.getOutputTensor(0)
                val output = ByteBuffer.allocateDirect(outputTensor.numBytes()).order(ByteOrder.nativeOrder())
                interpreter.runForMultipleInputsOutputs(buffers, mapOf<Int, Any>(0 to output))
                val scores = readScores(output, outputTensor)

                val expected = item.getJSONArray("expected_scores")
                assertEquals("$key: number of scores", expected.length(), scores.size)
                for (c in scores.indices) {
                    val want = expected.getDouble(c)
                    assertTrue("$key: score of '${labels[c]}' is ${scores[c]}, expected $want ± $limit",
                               abs(scores[c] - want) <= limit)
                }
                // Items this close to a threshold may flip within tolerance; edgemod.runtime.golden excuses them too.
                if (item.getDouble("threshold_margin") > limit) {
                    assertEquals("$key: decision at the shipped thresholds",
                                 expectedDecision(item), decide(scores, labels, thresholds))
                }
            }
        }
    }

    private fun readFile(argument: String, asset: String): ByteArray =
        arguments.getString(argument)?.let { File(it).readBytes() }
            ?: testContext.assets.open(asset).use { it.readBytes() }

    /** The input tensor index of each golden input name: artifacts name their input tensors
     *  input_ids, attention_mask or image. Those exported before say ..._args_0, ..._args_1 in the
     *  module's argument order, which the tensor indices need not follow (edgemod/runtime/runners.py
     *  binds both the same way). */
    private fun inputOrder(interpreter: Interpreter, inputNames: List<String>): List<Int> {
        val names = (0 until interpreter.inputTensorCount).map { interpreter.getInputTensor(it).name() }
        if (names.toSet() == inputNames.toSet()) return inputNames.map { names.indexOf(it) }
        return names.indices.sortedBy { index ->
            names[index].substringAfterLast('_').substringBefore(':').toIntOrNull() ?: 0
        }
    }

    private fun inputBuffer(stored: JSONObject, tensor: Tensor): ByteBuffer {
        val buffer = ByteBuffer.allocateDirect(tensor.numBytes()).order(ByteOrder.nativeOrder())
        if (stored.optString("encoding") == "base64-le") {
            val floats = ByteBuffer.wrap(Base64.getDecoder().decode(stored.getString("data")))
                .order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
            when (tensor.dataType()) {
                DataType.FLOAT32 -> while (floats.hasRemaining()) buffer.putFloat(floats.get())
                DataType.INT8 -> {
                    val q = tensor.quantizationParams()
                    // Math.rint rounds half to even, like numpy's round in edgemod/runtime/runners.py.
                    while (floats.hasRemaining()) {
                        val value = Math.rint((floats.get() / q.scale + q.zeroPoint).toDouble()).coerceIn(-128.0, 127.0)
                        buffer.put(value.toInt().toByte())
                    }
                }
                else -> error("float golden input for a ${tensor.dataType()} tensor ${tensor.name()}")
            }
        } else {
            val data = stored.getJSONArray("data")
            when (tensor.dataType()) {
                DataType.INT32 -> for (j in 0 until data.length()) buffer.putInt(data.getInt(j))
                DataType.INT64 -> for (j in 0 until data.length()) buffer.putLong(data.getLong(j))
                else -> error("integer golden input for a ${tensor.dataType()} tensor ${tensor.name()}")
            }
        }
        check(buffer.position() == buffer.capacity()) {
            "golden input fills ${buffer.position()} of ${buffer.capacity()} bytes of ${tensor.name()}: wrong artifact?"
        }
        buffer.rewind()
        return buffer
    }

    private fun readScores(output: ByteBuffer, tensor: Tensor): DoubleArray {
        output.rewind()
        val count = tensor.shape().last()
        return when (tensor.dataType()) {
            DataType.FLOAT32 -> DoubleArray(count) { output.float.toDouble() }
            DataType.INT8 -> {
                val q = tensor.quantizationParams()
                DoubleArray(count) { (output.get() - q.zeroPoint) * q.scale.toDouble() }
            }
            else -> error("unsupported output type ${tensor.dataType()}")
        }
    }

    /** training.thresholds.decide, ported: the highest-scoring class over its threshold, else benign. */
    private fun decide(scores: DoubleArray, labels: List<String>, thresholds: JSONObject): Any {
        val perClass = thresholds.getJSONObject("per_class")
        val cuts = labels.map { perClass.optJSONObject(it)?.optDouble("threshold", Double.POSITIVE_INFINITY) ?: Double.POSITIVE_INFINITY }
        if (thresholds.optBoolean("multi_label")) return labels.filterIndexed { c, _ -> scores[c] >= cuts[c] }
        val all = thresholds.optString("policy") == "argmax" || perClass.length() == 0
        var best = -1
        for (c in scores.indices) {
            if ((all || scores[c] >= cuts[c]) && (best < 0 || scores[c] > scores[best])) best = c  // first maximum wins
        }
        return if (best >= 0) labels[best] else thresholds.getString("benign")
    }

    private fun expectedDecision(item: JSONObject): Any =
        when (val decision = item.get("expected_decision")) {
            is JSONArray -> decision.strings()
            else -> decision as String
        }

    private fun JSONArray.strings(): List<String> = List(length()) { getString(it) }
}
